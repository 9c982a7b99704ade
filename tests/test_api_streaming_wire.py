"""A stream is DeepSeek's SSE, byte for byte in shape: headers, the role chunk first, deltas as
they arrive, usage on the finish chunk, ``data: [DONE]`` last, keep-alive comments while the
upstream is queueing."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from conversations.models import ModelConfig, User
from tests.test_api_support import bearer, chunks_of, make_key, sse_events

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def headers(alice: User, chat_model: ModelConfig, reasoner_model: ModelConfig) -> dict[str, str]:
    return bearer(make_key(alice))


def _stream(base: str, headers: dict[str, str], content: str, **body: Any) -> httpx.Response:
    return httpx.post(
        base + "/chat/completions",
        headers={**headers, "Accept-Encoding": "gzip"},
        json={
            "model": "deepseek-chat",
            "messages": [{"role": "user", "content": content}],
            "stream": True,
            **body,
        },
        timeout=30,
    )


def test_the_headers_say_event_stream_uncached_unbuffered_uncompressed(
    base: str, headers: dict[str, str]
) -> None:
    response = _stream(base, headers, "[[sim: say=hi]]")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert "content-encoding" not in response.headers


def test_chunks_follow_deepseeks_order_with_usage_only_on_the_finish_chunk(
    base: str, headers: dict[str, str]
) -> None:
    response = _stream(
        base, headers, "[[sim: say=a b c d]]", stream_options={"include_usage": True}
    )
    data, _ = sse_events(response.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert {(c["id"], c["created"], c["model"]) for c in chunks} == {
        (chunks[0]["id"], chunks[0]["created"], "deepseek-chat")
    }
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert all(c["usage"] is None for c in chunks[:-1])
    assert [c["choices"][0]["finish_reason"] for c in chunks].count(None) == len(chunks) - 1
    last = chunks[-1]
    assert last["choices"][0] == {
        "index": 0,
        "delta": {"content": ""},
        "logprobs": None,
        "finish_reason": "stop",
    }
    usage = last["usage"]
    assert usage["prompt_tokens"] == (
        usage["prompt_cache_hit_tokens"] + usage["prompt_cache_miss_tokens"]
    )
    assert usage["prompt_tokens_details"]["cached_tokens"] == usage["prompt_cache_hit_tokens"]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "a b c d"

    # Without include_usage earlier chunks carry no usage key; the last still has the totals.
    plain = chunks_of(_stream(base, headers, "[[sim: say=a b]]").text)
    assert all("usage" not in c for c in plain[:-1]) and plain[-1]["usage"]["total_tokens"]


def test_a_thinking_stream_puts_all_reasoning_before_the_answer(
    base: str, headers: dict[str, str]
) -> None:
    chunks = chunks_of(
        _stream(base, headers, "2+2? [[sim: say=4]]", model="deepseek-reasoner").text
    )
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": None, "reasoning_content": ""}
    kinds = ["r" if d.get("reasoning_content") else "c" for d in deltas[1:-1]]
    assert kinds and kinds == sorted(kinds, key=lambda k: k == "c") and kinds[-1] == "c"
    assert all(d["reasoning_content"] is None for d in deltas[1:] if d.get("content"))
    assert deltas[-1] == {"content": "", "reasoning_content": None}
    assert chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0


def test_deltas_are_relayed_as_they_arrive_not_buffered(base: str, headers: dict[str, str]) -> None:
    words = " ".join(f"w{i}" for i in range(40))
    arrivals: list[float] = []
    with httpx.stream(
        "POST",
        base + "/v1/chat/completions",
        headers=headers,
        json={
            "model": "deepseek-chat",
            "messages": [
                {"role": "user", "content": f"[[sim: tokens_per_s=40]][[sim: say={words}]]"}
            ],
            "stream": True,
        },
        timeout=30,
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.monotonic())
    # ~1 s of pacing upstream: the first deltas reach us long before the last.
    assert len(arrivals) > 10
    assert arrivals[-1] - arrivals[1] > 0.5


def test_keep_alive_comments_flow_while_the_upstream_queues(
    base: str, headers: dict[str, str]
) -> None:
    started = time.monotonic()
    response = _stream(base, headers, "[[sim: queue=6]] [[sim: say=done]]")
    assert response.status_code == 200
    assert time.monotonic() - started >= 6
    data, comments = sse_events(response.text)
    assert comments and all(c == ": keep-alive" for c in comments)
    assert response.text.startswith(": keep-alive\n\n")
    assert data[-1] == "[DONE]"
