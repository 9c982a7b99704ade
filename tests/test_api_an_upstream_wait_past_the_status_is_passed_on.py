"""An upstream 429 whose Retry-After our retries cannot wait out before the status goes out is
passed on as a 429, with its Retry-After, streamed or not.

The upstream client waited out a Retry-After of up to 20 s (its retry budget) before trying
again, but a call's status goes out after 5 s (``api_asgi.FIRST_OUTPUT_WAIT_S``). An upstream
that kept refusing for, say, 4 s twice was then told as a 200 whose body was the error
envelope (a stream: its error event): the OpenAI SDKs read that 200 as a completion without
choices (``TypeError`` on ``choices[0]``), and retried nothing, where a 429 with its
Retry-After is what they wait out and retry themselves.
"""

from __future__ import annotations

import pytest

from conversations.models import ModelConfig, User
from tests.test_api_support import assert_envelope, bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_429_past_the_wait_for_the_status_is_a_429(
    base: str, alice: User, chat_model: ModelConfig, stream: bool
) -> None:
    # Within the upstream client's own budget (20 s), but two waits of 4 s pass the 5 s after
    # which the status is a 200.
    body = {
        "stream": stream,
        "messages": [{"role": "user", "content": "[[sim: fault=429 retry_after=4]]"}],
    }
    response = chat(base, bearer(make_key(alice)), body)
    error = assert_envelope(response, 429, "rate_limit_error")
    assert error["code"] == "rate_limited"
    assert response.headers["retry-after"] == "4"
    assert response.elapsed.total_seconds() < 5


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_slow_to_refuse_is_passed_on_as_a_429(
    base: str, alice: User, chat_model: ModelConfig, stream: bool
) -> None:
    """The retry budget counts the attempts as well as the waits: an upstream that takes 1.5 s
    to answer a 429 asking for 2 s was retried after the wait, the second refusal coming 5 s
    in, after the status (a 200 with the error for its body)."""
    body = {
        "stream": stream,
        "messages": [
            {"role": "user", "content": "[[sim: fault=429 retry_after=2 fault_after=1.5]]"}
        ],
    }
    response = chat(base, bearer(make_key(alice)), body)
    error = assert_envelope(response, 429, "rate_limit_error")
    assert error["code"] == "rate_limited"
    assert response.elapsed.total_seconds() < 5
