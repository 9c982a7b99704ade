"""NaN and Infinity are Python's extensions, not JSON: a body holding them is malformed, a 400
like any other (after the key), not accepted and sent upstream as a body it cannot parse."""

from __future__ import annotations

import httpx
import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests.test_api_support import assert_envelope, bearer, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_a_body_holding_nan_or_infinity_is_malformed(
    base: str, alice: User, chat_model: ModelConfig, constant: bytes
) -> None:
    body = (
        b'{"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}], '
        b'"tools": [{"type": "function", "function": {"name": "lookup", '
        b'"parameters": {"type": "object", "maximum": %s}}}]}' % constant
    )
    url = base + "/v1/chat/completions"
    response = httpx.post(url, headers=bearer(make_key(alice)), content=body, timeout=30)
    error = assert_envelope(response, 400, "invalid_request_error")
    assert "JSON" in error["message"]
    assert not UsageRecord.objects.exists()
