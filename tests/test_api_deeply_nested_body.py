"""A body nested deeper than the JSON parser goes is answered like any malformed body (the key
checked first, then a 400), not with a 500 and a traceback in the log."""

from __future__ import annotations

import httpx
import pytest

from conversations.models import ModelConfig, User
from tests.test_api_support import assert_envelope, bearer, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

URL = "/v1/chat/completions"


def _nested(depth: int, where: str = "messages") -> bytes:
    return b'{"model":"deepseek-chat","%s":%s%s}' % (where.encode(), b"[" * depth, b"]" * depth)


def _post(base: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(base + URL, content=body, headers=headers, timeout=30)


def test_a_deeply_nested_body_with_a_bad_key_hears_about_the_key(base: str) -> None:
    response = _post(base, _nested(100_000), {"Authorization": "Bearer sk-team-not-a-key"})
    assert_envelope(response, 401, "authentication_error")


def test_a_deeply_nested_body_is_answered_as_malformed(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    headers = bearer(make_key(alice))
    malformed = assert_envelope(_post(base, b'{"model":', headers), 400, "invalid_request_error")
    for depth in (100_000, 5_000):
        nested = assert_envelope(_post(base, _nested(depth), headers), 400, "invalid_request_error")
        # The same error; only a malformed body's message says where it breaks off.
        assert nested == {**malformed, "message": "The request body is not valid JSON."}
