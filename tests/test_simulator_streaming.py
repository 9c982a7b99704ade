from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulator.testing import running_simulator, sse_chunks, sse_data

AUTH = {"Authorization": "Bearer sk-alice"}
ASK = [{"role": "user", "content": "Write a short deploy checklist"}]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_simulator() as base:
        yield base


def stream(url: str, **extra: Any) -> httpx.Response:
    body = {"model": "deepseek-flash", "messages": ASK, "stream": True, **extra}
    return httpx.post(f"{url}/chat/completions", headers=AUTH, json=body)


def test_a_stream_is_event_stream_framed_and_ends_with_done(url: str) -> None:
    response = stream(url, stream_options={"include_usage": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-ds-trace-id"]
    text = response.text
    assert text.endswith("data: [DONE]\n\n")
    for block in text.split("\n\n")[:-1]:
        assert block.startswith("data: ")
        assert "\n" not in block
        if block != "data: [DONE]":
            json.loads(block[len("data: ") :])


def test_only_the_first_chunk_has_the_role_and_all_share_id_created_model(url: str) -> None:
    chunks = sse_chunks(stream(url).text)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:])
    assert len({(c["id"], c["created"], c["model"], c["system_fingerprint"]) for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)


def test_thinking_streams_all_reasoning_before_content(url: str) -> None:
    chunks = sse_chunks(stream(url).text)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": None, "reasoning_content": ""}
    kinds = [
        "reasoning" if d.get("reasoning_content") else "content" if d.get("content") else "empty"
        for d in deltas
    ]
    first_content = kinds.index("content")
    assert "reasoning" in kinds[:first_content]
    assert "reasoning" not in kinds[first_content:]
    for delta in deltas[1:-1]:
        if delta.get("reasoning_content"):
            assert delta["content"] is None
        else:
            assert delta["reasoning_content"] is None
    assert deltas[-1] == {"content": "", "reasoning_content": None}


def test_non_thinking_deltas_follow_the_chat_sequence(url: str) -> None:
    chunks = sse_chunks(stream(url, thinking={"type": "disabled"}).text)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert all(list(d) == ["content"] for d in deltas[1:])
    assert deltas[-1] == {"content": ""}


def test_exactly_the_last_chunk_finishes_and_carries_usage(url: str) -> None:
    chunks = sse_chunks(stream(url, stream_options={"include_usage": True}).text)
    finishes = [c["choices"][0]["finish_reason"] for c in chunks]
    assert finishes[:-1] == [None] * (len(chunks) - 1)
    assert finishes[-1] == "stop"
    assert all(c["usage"] is None for c in chunks[:-1])
    usage = chunks[-1]["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] > 0


def test_the_streamed_text_matches_the_non_streamed_reply(url: str) -> None:
    chunks = sse_chunks(stream(url, stream_options={"include_usage": True}).text)
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content") or "" for c in chunks)
    body = httpx.post(
        f"{url}/chat/completions", headers=AUTH, json={"model": "deepseek-flash", "messages": ASK}
    ).json()
    assert streamed == body["choices"][0]["message"]["content"]
    assert reasoning == body["choices"][0]["message"]["reasoning_content"]
    assert chunks[-1]["usage"]["completion_tokens"] == body["usage"]["completion_tokens"]


def test_without_include_usage_only_the_last_chunk_has_a_usage_key(url: str) -> None:
    chunks = sse_chunks(stream(url).text)
    assert all("usage" not in c for c in chunks[:-1])
    assert chunks[-1]["usage"]["prompt_tokens"] > 0


def test_trailing_usage_placement_sends_an_openai_style_usage_chunk() -> None:
    with running_simulator(usage_placement="trailing") as base:
        chunks = sse_chunks(stream(base, stream_options={"include_usage": True}).text)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] > 0
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-2]["usage"] is None


def test_chunk_tokens_sets_how_many_tokens_ride_on_one_chunk() -> None:
    with running_simulator(chunk_tokens=1) as base:
        one = sse_chunks(stream(base, stream_options={"include_usage": True}).text)
    with running_simulator(chunk_tokens=4) as base:
        four = sse_chunks(stream(base, stream_options={"include_usage": True}).text)
    tokens = one[-1]["usage"]["completion_tokens"]
    # role chunk + one chunk per token + finish chunk
    assert len(one) == tokens + 2
    assert len(four) < len(one) / 3


def test_stream_events_are_comment_free_without_a_queue(url: str) -> None:
    text = stream(url).text
    assert ": keep-alive" not in text
    assert sse_data(text)[-1] == "[DONE]"
