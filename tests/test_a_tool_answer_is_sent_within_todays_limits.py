"""A tool's result answers the call whatever the admin did to the user's cap meanwhile: the
reply it starts asks for what the calling reply had (its max_tokens), within the limits of now,
as a Continue does. It was refused ("max_tokens may be at most 1000 under your limits") with
nothing the user could change: a tool answer sends no parameters, and the conversation's
Settings do not reach the calling reply's; only Regenerate got out."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import Conversation, Message, User, UserLimits
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

CALL = {
    "id": "call_weather",
    "type": "function",
    "function": {"name": "weather", "arguments": "{}"},
}


async def test_a_call_asked_under_a_higher_cap_is_answered_under_the_lower_one(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    question = await Message.objects.acreate(
        conversation=alice_conversation, role="user", author=alice, content="Weather?"
    )
    asking = await Message.objects.acreate(
        conversation=alice_conversation,
        parent=question,
        role="assistant",
        status="complete",
        finish_reason="tool_calls",
        tool_calls=[CALL],
        params={
            "max_tokens": 4000,
            "tools": [{"type": "function", "function": {"name": "weather"}}],
        },
    )
    await UserLimits.objects.acreate(user=alice, max_output_tokens=1000)

    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {
            "type": "tool.answer",
            "reply_id": str(asking.pk),
            "tool_call_id": "call_weather",
            "content": "Sunny",
            "client_id": "t1",
        }
    )
    end = await socket.until(lambda f: f["type"] in ("error", "reply.completed", "reply.failed"))
    await socket.close()
    assert end["type"] == "reply.completed", end
    reply = await Message.objects.aget(pk=end["reply_id"])
    assert reply.params["max_tokens"] == 1000
