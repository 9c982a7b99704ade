"""A body that is not JSON is told where it goes wrong (as DeepSeek's "at line L column C"),
a body that is not UTF-8 is told so, and a UTF-8 byte order mark before the JSON (which
PowerShell's Set-Content and Out-File write) is skipped. All three used to get the same bare
"The request body is not valid JSON.", the BOM too: nothing told a developer what to fix."""

from __future__ import annotations

import json

import httpx
import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests.test_api_support import assert_envelope, bearer, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def _post(base: str, user: User, body: bytes) -> httpx.Response:
    return httpx.post(
        base + "/v1/chat/completions",
        headers={**bearer(make_key(user)), "Content-Type": "application/json"},
        content=body,
        timeout=30,
    )


def test_json_that_breaks_off_is_told_where(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    body = b'{"model": "deepseek-chat",\n "messages": [{"role": "user", "content": "hi"}]'
    error = assert_envelope(_post(base, alice, body), 400, "invalid_request_error")
    assert error["message"].startswith("The request body is not valid JSON: ")
    assert "line 2 column 49" in error["message"]
    assert not UsageRecord.objects.exists()


def test_a_body_that_is_not_utf8_is_told_so(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    body = '{"model": "deepseek-chat", "messages": [{"role": "user", "content": "café"}]}'
    error = assert_envelope(
        _post(base, alice, body.encode("latin-1")), 400, "invalid_request_error"
    )
    assert "not valid UTF-8" in error["message"]
    assert not UsageRecord.objects.exists()


def test_a_byte_order_mark_before_the_json_is_skipped(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    body = json.dumps(
        {"model": "deepseek-chat", "messages": [{"role": "user", "content": "[[sim: say=Hi.]]"}]}
    )
    response = _post(base, alice, b"\xef\xbb\xbf" + body.encode())
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Hi."
