"""A model name holding a NUL character (JSON's ``\\u0000``) names no model: DeepSeek's 400
"Model Not Exist" (after the key), not a 500 from a lookup PostgreSQL cannot run."""

from __future__ import annotations

import httpx
import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests.test_api_support import assert_envelope, bearer, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

BODY = b'{"model": "deepseek-chat\\u0000", "messages": [{"role": "user", "content": "hi"}]}'


def test_a_model_name_with_a_nul_does_not_exist(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    url = base + "/v1/chat/completions"
    for stream in (b"", b', "stream": true'):
        body = BODY[:-1] + stream + b"}"
        response = httpx.post(url, headers=bearer(make_key(alice)), content=body, timeout=30)
        error = assert_envelope(response, 400, "invalid_request_error")
        assert error["message"] == "Model Not Exist" and error["param"] == "model"
    refused = httpx.post(url, headers=bearer("sk-team-" + "x" * 40), content=BODY, timeout=30)
    assert_envelope(refused, 401, "authentication_error")
    assert not UsageRecord.objects.exists()
