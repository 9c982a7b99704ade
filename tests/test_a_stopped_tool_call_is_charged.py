"""A reply stopped in the middle of a tool call is charged for the call's name and arguments
it had produced (no provider usage for a stopped stream: the estimate counts them too)."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import Conversation, Message, UsageRecord, User
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_ticket",
            "description": "Fetch a ticket",
            "parameters": {
                "type": "object",
                "properties": {"key": {"type": "string"}, "notes": {"type": "string"}},
                "required": ["key"],
            },
        },
    }
]


async def test_a_reply_stopped_mid_tool_call_is_charged_for_its_arguments(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c1",
            "content": "Look up OPS-17. [[sim: tool=lookup_ticket tokens_per_s=20]]",
            "params": {"tools": TOOLS},
        }
    )
    # Wait until some arguments have streamed, then stop.
    arguments = ""
    while len(arguments) < 12:
        frame = await socket.receive(timeout=20)
        for fragment in frame.get("tool_calls", []) if frame["type"] == "reply.delta" else []:
            arguments += fragment.get("arguments", "")
    reply_id = socket.of_type("message.created")[1]["message"]["id"]
    await socket.send({"type": "reply.cancel", "reply_id": reply_id})
    end = await socket.until_reply_ends()
    assert end["type"] == "reply.failed" and end["status"] == "cancelled", end
    await socket.close()

    reply = await Message.objects.aget(pk=reply_id)
    assert reply.content == "" and reply.reasoning == ""
    [call] = reply.tool_calls
    assert call["function"]["name"] == "lookup_ticket"
    assert call["function"]["arguments"].startswith(arguments)
    record = await UsageRecord.objects.aget(message_id=reply_id)
    assert record.outcome == "cancelled" and record.estimated
    assert record.completion_tokens > 0
