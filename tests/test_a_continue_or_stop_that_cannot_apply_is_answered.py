"""``reply.continue`` of a reply still being written and ``reply.cancel`` of one that has ended
are answered with an error naming the reply and its state; they were met with silence, which a
client cannot tell from a lost frame."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import Conversation, Message, UsageRecord, User
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

LONG = " ".join(f"w{i}" for i in range(300))


async def test_continuing_a_reply_still_being_written_is_refused_naming_its_state(
    alice: User, alice_conversation: Conversation, slow_simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={LONG}]]"}
    )
    await socket.until_type("reply.delta")
    reply_id = socket.of_type("message.created")[1]["message"]["id"]

    await socket.send({"type": "reply.continue", "reply_id": reply_id})
    error = await socket.until_type("error")
    assert error["code"] == "conflict" and error["request_type"] == "reply.continue"
    # (The row says pending until its first checkpoint, about a second in.)
    assert error["reply_id"] == reply_id and error["status"] in ("pending", "streaming")
    assert "still being written" in error["message"]

    await socket.send({"type": "reply.cancel", "reply_id": reply_id})
    assert (await socket.until_reply_ends())["status"] == "cancelled"
    await socket.close()
    assert await UsageRecord.objects.acount() == 1


async def test_stopping_a_reply_that_has_ended_is_refused_naming_how_it_ended(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send({"type": "message.send", "client_id": "c1", "content": "[[sim: say=Done.]]"})
    end = await socket.until_reply_ends()
    assert end["status"] == "complete"

    await socket.send({"type": "reply.cancel", "reply_id": end["reply_id"]})
    error = await socket.until_type("error")
    await socket.close()
    assert error["code"] == "conflict" and error["request_type"] == "reply.cancel"
    assert error["reply_id"] == end["reply_id"] and error["status"] == "complete"
    assert "already ended" in error["message"]
    # The reply stays as it ended.
    reply = await Message.objects.aget(pk=end["reply_id"])
    assert (reply.status, reply.content) == ("complete", "Done.")


async def test_continuing_a_reply_that_finished_whole_is_refused_naming_its_state(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send({"type": "message.send", "client_id": "c1", "content": "[[sim: say=Done.]]"})
    end = await socket.until_reply_ends()
    assert (end["status"], end["finish_reason"]) == ("complete", "stop")

    await socket.send({"type": "reply.continue", "reply_id": end["reply_id"]})
    error = await socket.until_type("error")
    await socket.close()
    assert error["code"] == "conflict" and error["request_type"] == "reply.continue"
    assert error["reply_id"] == end["reply_id"] and error["status"] == "complete"
    assert "cut off or interrupted" in error["message"]
