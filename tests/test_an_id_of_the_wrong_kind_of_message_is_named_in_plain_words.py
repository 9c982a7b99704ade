"""A frame naming a message of the wrong kind (a question where a reply is wanted, a reply where
a question is) is refused in words a person reads: "not an assistant message", not "not a
assistant message"."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import Conversation, Message, User
from tests.support import open_socket

pytestmark = pytest.mark.django_db(transaction=True)


async def test_the_refusal_of_a_message_of_the_wrong_kind_reads_right(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    question = await Message.objects.acreate(
        conversation=alice_conversation, role="user", author=alice, content="Why?"
    )
    reply = await Message.objects.acreate(
        conversation=alice_conversation,
        parent=question,
        role="assistant",
        content="Because.",
        status="complete",
    )
    socket = await open_socket(alice, alice_conversation)
    await socket.send({"type": "reply.cancel", "reply_id": str(question.pk)})
    wrong_reply = await socket.until_type("error")
    await socket.send(
        {"type": "message.edit", "message_id": str(reply.pk), "content": "x", "client_id": "e"}
    )
    wrong_question = await socket.until_type("error")
    await socket.close()
    assert wrong_reply["message"] == "That message is not an assistant message."
    assert wrong_question["message"] == "That message is not a user message."
