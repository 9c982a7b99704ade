"""Continue extends a reply in place: only a reply nothing was posted under yet. One that a
later question already followed would change, under that question and its answer, the
history they were written from."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import Conversation, Message, ModelConfig, UsageRecord, User
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def test_a_reply_with_a_follow_up_cannot_be_continued(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c1",
            "content": "[[sim: finish=length say=The first half of an answer]]",
        }
    )
    first = await socket.until_reply_ends()
    assert first["finish_reason"] == "length", first
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c2",
            "content": "[[sim: say=A follow-up answer.]]",
            "parent_id": first["reply_id"],
        }
    )
    assert (await socket.until_reply_ends())["type"] == "reply.completed"

    await socket.send({"type": "reply.continue", "reply_id": first["reply_id"]})
    error = await socket.until(lambda f: f["type"] in ("error", "message.created"))
    await socket.close()
    assert error["type"] == "error" and error["code"] == "conflict", error
    reply = await Message.objects.aget(pk=first["reply_id"])
    assert reply.status == Message.Status.COMPLETE
    assert reply.content == "The first half of an answer"
    assert await UsageRecord.objects.filter(purpose="chat").acount() == 2


async def test_a_reply_of_another_model_than_the_conversations_is_not_continued_by_it(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    """The conversation switched to another model after a reply was cut off: Continue is
    refused, saying which model wrote it and what to do, and nothing is called or charged.
    Before, the new model went on with the old one's text, the row still named the old model
    (its thinking shown by the old one's rule) and the call was charged as the new model's."""
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c1",
            "content": "[[sim: finish=length say=The first half of an answer]]",
        }
    )
    first = await socket.until_reply_ends()
    assert first["finish_reason"] == "length", first
    written_by = alice_conversation.model
    reasoner = await ModelConfig.objects.aget(name="deepseek-reasoner")
    await Conversation.objects.filter(pk=alice_conversation.pk).aupdate(model=reasoner)

    await socket.send({"type": "reply.continue", "reply_id": first["reply_id"]})
    error = await socket.until(lambda f: f["type"] in ("error", "reply.started"))
    await socket.close()
    assert error["type"] == "error" and error["code"] == "conflict", error
    assert error["message"] == (
        f"This reply was written by {written_by.display_name}, and the conversation now uses "
        f"{reasoner.display_name}: regenerate it to answer with {reasoner.display_name}, or "
        f"switch the conversation back to {written_by.display_name} to continue it."
    )
    reply = await Message.objects.aget(pk=first["reply_id"])
    assert reply.status == Message.Status.COMPLETE and reply.finish_reason == "length"
    assert await UsageRecord.objects.filter(purpose="chat").acount() == 1
