"""A socket acts only on its own conversation's messages: the id of a message or reply of a
conversation its user may not see, sent in any frame, is ``not_found`` as an unknown id is, and
nothing of it is read, written, stopped or sent back."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import Conversation, Message, User
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def test_ids_of_another_conversation_are_not_found(
    alice: User,
    charlie: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
) -> None:
    question = await Message.objects.acreate(
        conversation=alice_conversation, role="user", author=alice, content="The launch codes?"
    )
    reply = await Message.objects.acreate(
        conversation=alice_conversation,
        parent=question,
        role="assistant",
        content="Secret: 0000",
        status="complete",
        finish_reason="length",
    )
    charlies = await Conversation.objects.acreate(owner=charlie, model=alice_conversation.model)
    socket = await open_socket(charlie, charlies)
    theirs, mine = str(question.pk), str(reply.pk)
    refused = []
    for frame in (
        {"type": "message.send", "client_id": "s1", "content": "Hi", "parent_id": mine},
        {"type": "message.edit", "message_id": theirs, "content": "Hi", "client_id": "e1"},
        {"type": "reply.regenerate", "reply_id": mine, "client_id": "r1"},
        {"type": "reply.continue", "reply_id": mine},
        {"type": "reply.cancel", "reply_id": mine},
        {"type": "reply.sync", "reply_id": mine, "after_seq": 0},
        {
            "type": "tool.answer",
            "reply_id": mine,
            "tool_call_id": "call_0",
            "content": "{}",
            "client_id": "t1",
        },
    ):
        await socket.send(frame)
        error = await socket.until_type("error")
        refused.append((frame["type"], error["code"]))
    await socket.close()
    assert refused == [
        ("message.send", "not_found"),
        ("message.edit", "not_found"),
        ("reply.regenerate", "not_found"),
        ("reply.continue", "not_found"),
        ("reply.cancel", "not_found"),
        ("reply.sync", "not_found"),
        ("tool.answer", "not_found"),
    ]
    assert not any("Secret" in str(frame) for frame in socket.frames)
    assert await Message.objects.filter(conversation=alice_conversation).acount() == 2
    assert not await Message.objects.filter(conversation=charlies).aexists()
