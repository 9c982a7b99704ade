"""A snapshot's tool calls are those published up to its sequence number, like its text: a
fragment that arrived but is still waiting for the next delta is left to that delta. (The
client replaces its tool calls with the snapshot's, then applies the next deltas' fragments:
a fragment in both doubled the arguments.)"""

from __future__ import annotations

import uuid
from typing import Any

from conversations.generation import GenerationTask
from conversations.upstream import ToolCallDelta


class Watcher:
    """A socket of this process in the conversation: it keeps what it is handed."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    async def deliver(self, event: dict[str, Any]) -> None:
        self.frames.append(dict(event))


def rebuilt_arguments(snapshot: dict[str, Any], deltas: list[dict[str, Any]]) -> list[str]:
    """As static/js/conversation.js does: the snapshot's calls, then the later fragments."""
    arguments = [call["function"]["arguments"] for call in snapshot["tool_calls"]]
    for delta in deltas:
        if delta["seq"] <= snapshot["seq"]:
            continue
        for fragment in delta.get("tool_calls", []):
            while len(arguments) <= fragment["index"]:
                arguments.append("")
            arguments[fragment["index"]] += fragment["arguments"]
    return arguments


async def test_a_snapshot_then_the_next_deltas_rebuild_each_tool_call_once(
    generation_service: Any,
) -> None:
    task = GenerationTask(generation_service, uuid.uuid4(), uuid.uuid4())
    watcher = Watcher()
    await generation_service.join(task.group, watcher)
    try:
        # As the stream hands them in: fragments, a delta now and then.
        task._add_tool_fragment(ToolCallDelta(0, "call_00_x", "lookup_ticket", '{"key": '))
        await task.flush()
        task._add_tool_fragment(ToolCallDelta(0, None, None, '"OPS-17"}'))
        task._add_tool_fragment(ToolCallDelta(1, "call_01_y", "lookup_user", '{"id"'))
        snapshot = task.snapshot(0)  # a socket syncs between two deltas
        await task.flush()
        task._add_tool_fragment(ToolCallDelta(1, None, None, ": 7}"))
        await task.flush()
    finally:
        await generation_service.leave(task.group, watcher)
    deltas = [f for f in watcher.frames if f["type"] == "reply.delta"]
    assert snapshot["seq"] == 1
    assert rebuilt_arguments(snapshot, deltas) == ['{"key": "OPS-17"}', '{"id": 7}']
    assert [call["id"] for call in snapshot["tool_calls"]] == ["call_00_x"]
