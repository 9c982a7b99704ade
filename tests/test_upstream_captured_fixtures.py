"""Every captured DeepSeek response, replayed over real HTTP in random pieces, parses exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conversations.upstream import (
    Completed,
    ContentDelta,
    Finish,
    ModelTarget,
    ReasoningDelta,
    ToolCallDelta,
    Usage,
)
from tests.test_upstream_support import (
    FIXTURES,
    Connection,
    collect,
    serving,
)

STREAMS = sorted(FIXTURES.glob("*.chunks.txt"))
BODIES = sorted(FIXTURES.glob("*.json"))
TARGET = ModelTarget("deepseek-flash", thinking=True, reasoning_passback="send")
MESSAGES = [{"role": "user", "content": "Hi"}]


def expected_from_chunks(path: Path) -> dict[str, Any]:
    """What the stream contains, computed straight from the fixture."""
    text, reasoning, finish, usage = "", "", None, None
    calls: dict[int, dict[str, str]] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        data = json.loads(line)
        for choice in data.get("choices") or []:
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            reasoning += delta.get("reasoning_content") or ""
            for call in delta.get("tool_calls") or []:
                entry = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
                entry["id"] = call.get("id") or entry["id"]
                function = call.get("function") or {}
                entry["name"] = function.get("name") or entry["name"]
                entry["arguments"] += function.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
        usage = data.get("usage") or usage
    tool_calls = [(i, c["id"], c["name"], c["arguments"]) for i, c in sorted(calls.items())]
    return {
        "text": text,
        "reasoning": reasoning,
        "tool_calls": tool_calls,
        "finish": finish,
        "usage": usage,
    }


def wire_bytes(path: Path) -> bytes:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return "".join(f"data: {line}\n\n" for line in lines).encode() + b"data: [DONE]\n\n"


@pytest.mark.asyncio
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
@pytest.mark.parametrize("path", STREAMS, ids=[p.name for p in STREAMS])
async def test_a_captured_stream_yields_exactly_its_content(path: Path, chunked: bool) -> None:
    expected = expected_from_chunks(path)
    data = wire_bytes(path)

    async def handler(connection: Connection) -> None:
        await connection.head(chunked=chunked)
        await connection.write(data, pieces=(1, 37))
        await connection.end()

    async with serving([handler], seed=len(data)) as (_server, client):
        events = await collect(client.stream_chat(TARGET, MESSAGES))

    text = "".join(e.text for e in events if isinstance(e, ContentDelta))
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    fragments: dict[int, str] = {}
    for event in events:
        if isinstance(event, ToolCallDelta):
            fragments[event.index] = fragments.get(event.index, "") + event.arguments_fragment
    assert text == expected["text"]
    assert reasoning == expected["reasoning"]
    assert fragments == {i: args for i, _, _, args in expected["tool_calls"]}
    assert [e for e in events if isinstance(e, Finish)] == [Finish(expected["finish"])]
    assert [e for e in events if isinstance(e, Usage)] == [Usage(expected["usage"])]

    assert isinstance(events[-1], Completed)
    result = events[-1].result
    assert result.text == expected["text"]
    assert result.reasoning == expected["reasoning"]
    assert [(c.index, c.id, c.name, c.arguments) for c in result.tool_calls] == expected[
        "tool_calls"
    ]
    assert result.finish_reason == expected["finish"]
    assert result.usage == expected["usage"]
    assert result.attempts == 1


def test_the_fixture_set_is_the_one_described() -> None:
    names = {p.name for p in STREAMS} | {p.name for p in BODIES}
    assert "legacy-tool-call.chunks.txt" in names
    assert len(STREAMS) == 5
    assert len(BODIES) == 5
    assert any(expected_from_chunks(p)["tool_calls"] for p in STREAMS)


@pytest.mark.asyncio
@pytest.mark.parametrize("leading", [b"", b"\n\n\n"], ids=["plain", "after-keepalive-lines"])
@pytest.mark.parametrize("path", BODIES, ids=[p.name for p in BODIES])
async def test_a_captured_body_parses_exactly(path: Path, leading: bytes) -> None:
    data = json.loads(path.read_text())
    message = data["choices"][0]["message"]
    raw = leading + path.read_bytes()

    async def handler(connection: Connection) -> None:
        await connection.head(content_type="application/json")
        await connection.write(raw, pieces=(1, 37))
        await connection.end()

    async with serving([handler], seed=len(raw)) as (_server, client):
        result = await client.complete_chat(TARGET, MESSAGES)

    assert result.text == (message.get("content") or "")
    assert result.reasoning == (message.get("reasoning_content") or "")
    assert [(c.id, c.name, c.arguments) for c in result.tool_calls] == [
        (c["id"], c["function"]["name"], c["function"]["arguments"])
        for c in message.get("tool_calls") or []
    ]
    assert result.finish_reason == data["choices"][0]["finish_reason"]
    assert result.usage == data["usage"]
    assert result.model == data["model"]
    logprobs = data["choices"][0]["logprobs"] or {}
    assert result.logprobs_content == (logprobs.get("content") or [])
