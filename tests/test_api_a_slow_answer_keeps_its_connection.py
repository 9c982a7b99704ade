"""A non-streamed answer the upstream takes long to give keeps its connection alive as
DeepSeek's does while a request is queued: after FIRST_OUTPUT_WAIT_S the 200 goes out with a
blank line, blank lines follow while the wait lasts, then the JSON body (which JSON parsers
read past the whitespace). Before, the client heard nothing until the whole answer was ready,
and a client or proxy with a shorter read timeout dropped the call. A failure after the 200
went out can only be told in the body: the error envelope, and the call settled as failed."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from conversations.api_asgi import FIRST_OUTPUT_WAIT_S, KEEPALIVE_INTERVAL_S
from conversations.models import ModelConfig, User
from tests.test_api_support import bearer, make_key, settled_record

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

# The upstream gives up on a request still queued after 6 s, having sent keep-alives (a
# failure it does not bill): past the 5 s wait, and not retried (a retry as long would end past
# the API's retry budget).
SIMULATOR_OPTIONS = {"queue_timeout_s": 6, "keepalive_interval_s": 0.5}


def _ask(base: str, alice: User, content: str) -> tuple[httpx.Response, float, list[float], str]:
    """The response, when its headers came, when each piece of its body came, and the body."""
    body = {"model": "deepseek-chat", "messages": [{"role": "user", "content": content}]}
    started = time.monotonic()
    # A read timeout a little past the keep-alive interval: a silent wait fails here.
    timeout = httpx.Timeout(10, read=KEEPALIVE_INTERVAL_S + 3)
    arrivals: list[float] = []
    received = b""
    with httpx.stream(
        "POST",
        base + "/v1/chat/completions",
        headers=bearer(make_key(alice)),
        json=body,
        timeout=timeout,
    ) as response:
        headers_at = time.monotonic() - started
        for piece in response.iter_raw():
            arrivals.append(time.monotonic() - started)
            received += piece
    return response, headers_at, arrivals, received.decode()


def test_a_slow_answer_is_preceded_by_blank_lines(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    # Twelve seconds upstream: past the wait and past half the keep-alive interval after it.
    response, headers_at, arrivals, text = _ask(
        base, alice, "[[sim: first_token_latency=12]] [[sim: say=done]]"
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "content-length" not in response.headers  # not known when the status went out
    assert FIRST_OUTPUT_WAIT_S - 0.5 <= headers_at < FIRST_OUTPUT_WAIT_S + 2
    assert arrivals[0] < FIRST_OUTPUT_WAIT_S + 2  # the first blank line with the headers
    gaps = [later - earlier for earlier, later in zip([0.0, *arrivals], arrivals, strict=False)]
    assert max(gaps[1:]) <= KEEPALIVE_INTERVAL_S + 1
    blank = text[: len(text) - len(text.lstrip())]
    assert blank == "\n" * len(blank) and len(blank) >= 2
    completion = json.loads(text)  # what the SDKs do: whitespace before JSON is whitespace
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["content"] == "done"
    record = settled_record(user=alice)
    assert (record.state, record.outcome) == ("settled", "complete")


def test_a_quick_answer_keeps_its_length_and_no_blank_lines(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    response, headers_at, _, text = _ask(base, alice, "[[sim: say=done]]")
    assert response.status_code == 200 and headers_at < FIRST_OUTPUT_WAIT_S
    assert response.headers["content-length"] == str(len(text.encode()))
    assert text.startswith("{")


def test_a_failure_after_the_blank_lines_is_the_body_and_is_not_charged(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    # An attempt the upstream drops after 6 s in its queue (and nothing billed): past the 5 s
    # wait.
    response, _, _, text = _ask(base, alice, "[[sim: queue=7]]")
    assert response.status_code == 200  # went out before the failure was known
    assert text.startswith("\n")
    error = json.loads(text)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "upstream_queue_timeout"
    record = settled_record(user=alice)
    assert (record.state, record.outcome) == ("settled", "failed")
    assert record.total_tokens == 0 and record.reserved_tokens == 0
