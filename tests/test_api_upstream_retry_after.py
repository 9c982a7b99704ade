"""An upstream 429 reaches the caller with the upstream's Retry-After (rounded up to whole
seconds, at least 1), streamed or not, as our own quota 429s carry theirs."""

from __future__ import annotations

import pytest

from conversations.models import ModelConfig, User
from tests.test_api_support import assert_envelope, bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_429_passes_its_retry_after_on(
    base: str, alice: User, chat_model: ModelConfig, stream: bool
) -> None:
    # Longer than the upstream client's retry budget: it gives up at once and passes it on.
    body = {
        "stream": stream,
        "messages": [{"role": "user", "content": "[[sim: fault=429 retry_after=60]]"}],
    }
    response = chat(base, bearer(make_key(alice)), body)
    error = assert_envelope(response, 429, "rate_limit_error")
    assert error["code"] == "rate_limited"
    assert response.headers["retry-after"] == "60"


def test_an_upstream_429_without_retry_after_sends_none(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    body = {"messages": [{"role": "user", "content": "[[sim: fault=429]]"}]}
    response = chat(base, bearer(make_key(alice)), body)
    assert_envelope(response, 429, "rate_limit_error")
    assert "retry-after" not in response.headers
