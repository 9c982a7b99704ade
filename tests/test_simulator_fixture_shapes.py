"""The simulator's output against real captured DeepSeek responses: same keys, same order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator.testing import running_simulator, sse_chunks

AUTH = {"Authorization": "Bearer sk-alice"}
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "deepseek-captured"
TOOL = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


def fixture_json(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def fixture_chunks(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line]


def key_paths(value: Any, prefix: str = "") -> list[str]:
    """Every key path in order, so both the key sets and their order are compared."""
    paths: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            paths.append(prefix + key)
            paths += key_paths(item, prefix + key + ".")
    elif isinstance(value, list) and value:
        paths += key_paths(value[0], prefix + "[].")
    return paths


def delta_kind(delta: dict[str, Any]) -> str:
    if "role" in delta:
        return "role"
    if delta.get("tool_calls"):
        return "tool_first" if "id" in delta["tool_calls"][0] else "tool_args"
    if delta.get("reasoning_content"):
        return "reasoning"
    if delta.get("content"):
        return "content"
    return "empty"


def collapse(kinds: list[str]) -> list[str]:
    out: list[str] = []
    for kind in kinds:
        if not out or out[-1] != kind:
            out.append(kind)
    return out


@pytest.fixture(scope="module")
def legacy() -> Any:
    with (
        running_simulator(profile="legacy-2025") as url,
        httpx.Client(base_url=url, headers=AUTH) as client,
    ):
        yield client


def ask(client: httpx.Client, **body: Any) -> httpx.Response:
    payload = {"messages": [{"role": "user", "content": "Tell me about holidays"}], **body}
    return client.post("/chat/completions", json=payload)


@pytest.mark.parametrize(
    ("fixture", "body"),
    [
        ("legacy-text.json", {"model": "deepseek-chat", "max_tokens": 50}),
        ("legacy-reasoning.json", {"model": "deepseek-reasoner"}),
        (
            "legacy-json.json",
            {"model": "deepseek-reasoner", "response_format": {"type": "json_object"}},
        ),
    ],
)
def test_non_streaming_bodies_have_the_captured_keys_in_order(
    legacy: httpx.Client, fixture: str, body: dict[str, Any]
) -> None:
    mine = ask(legacy, **body).json()
    real = fixture_json(fixture)
    assert key_paths(mine) == key_paths(real)
    assert mine["choices"][0]["finish_reason"] == real["choices"][0]["finish_reason"]


def test_a_tool_call_body_has_the_captured_keys_in_order(legacy: httpx.Client) -> None:
    mine = legacy.post(
        "/chat/completions",
        json={
            "model": "deepseek-reasoner",
            "messages": [{"role": "user", "content": "What's the weather in San Francisco?"}],
            "tools": [TOOL],
        },
    ).json()
    real = fixture_json("legacy-tool-call.json")
    assert key_paths(mine) == key_paths(real)
    assert json.loads(mine["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]) == {
        "location": "San Francisco"
    }


@pytest.mark.parametrize(
    ("fixture", "body"),
    [
        ("legacy-text.chunks.txt", {"model": "deepseek-chat", "max_tokens": 40}),
        ("legacy-reasoning.chunks.txt", {"model": "deepseek-reasoner"}),
    ],
)
def test_streams_have_the_captured_chunk_keys_and_delta_sequence(
    legacy: httpx.Client, fixture: str, body: dict[str, Any]
) -> None:
    mine = sse_chunks(ask(legacy, stream=True, stream_options={"include_usage": True}, **body).text)
    real = fixture_chunks(fixture)
    assert key_paths(mine[0]) == key_paths(real[0])
    assert list(mine[0]["choices"][0]) == list(real[0]["choices"][0])
    assert key_paths(mine[1]) == key_paths(real[1])
    assert key_paths(mine[-1]) == key_paths(real[-1])
    assert [list(c["choices"][0]["delta"]) for c in mine[:2]] == [
        list(c["choices"][0]["delta"]) for c in real[:2]
    ]
    assert collapse([delta_kind(c["choices"][0]["delta"]) for c in mine]) == collapse(
        [delta_kind(c["choices"][0]["delta"]) for c in real]
    )
    assert mine[-1]["choices"][0]["finish_reason"] == real[-1]["choices"][0]["finish_reason"]


def test_a_tool_call_stream_matches_the_captured_sequence(legacy: httpx.Client) -> None:
    mine = sse_chunks(
        legacy.post(
            "/chat/completions",
            json={
                "model": "deepseek-reasoner",
                "stream": True,
                "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": "Call weather for San Francisco"}],
                "tools": [TOOL],
            },
        ).text
    )
    real = fixture_chunks("legacy-tool-call.chunks.txt")
    kinds = collapse([delta_kind(c["choices"][0]["delta"]) for c in mine])
    assert kinds == collapse([delta_kind(c["choices"][0]["delta"]) for c in real])
    first_tool = next(c for c in mine if delta_kind(c["choices"][0]["delta"]) == "tool_first")
    real_first = next(c for c in real if delta_kind(c["choices"][0]["delta"]) == "tool_first")
    assert key_paths(first_tool) == key_paths(real_first)
    assert key_paths(mine[-1]) == key_paths(real[-1])


def test_a_v4_thinking_stream_cut_by_max_tokens_matches_the_capture() -> None:
    with running_simulator(profile="current-2026") as url:
        mine = sse_chunks(
            httpx.post(
                f"{url}/chat/completions",
                headers=AUTH,
                json={
                    "model": "deepseek-v4-flash",
                    "max_tokens": 8,
                    "stream": True,
                    "stream_options": {"include_usage": True},
                    "messages": [{"role": "user", "content": "Reply OK"}],
                },
            ).text
        )
    real = fixture_chunks("v4-flash-thinking-length.chunks.txt")
    assert [key_paths(c) for c in (mine[0], mine[1], mine[-1])] == [
        key_paths(c) for c in (real[0], real[1], real[-1])
    ]
    assert collapse([delta_kind(c["choices"][0]["delta"]) for c in mine]) == collapse(
        [delta_kind(c["choices"][0]["delta"]) for c in real]
    )
    usage = mine[-1]["usage"]
    assert usage["completion_tokens"] == 8
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 8
    assert mine[-1]["choices"][0]["finish_reason"] == "length"
