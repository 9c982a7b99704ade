"""Regenerating a reply while it is still being written is refused, naming the reply and its
state: it would run a second generation beside it (two upstream calls, two charges). The page
offers no Regenerate while a reply streams; the server holds to the same rule."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import Conversation, Message, UsageRecord, User
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

LONG = " ".join(f"w{i}" for i in range(300))


async def test_a_streaming_reply_is_regenerated_only_once_it_has_ended(
    alice: User, alice_conversation: Conversation, slow_simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={LONG}]]"}
    )
    await socket.until_type("reply.delta")
    reply_id = socket.of_type("message.created")[1]["message"]["id"]

    await socket.send({"type": "reply.regenerate", "reply_id": reply_id, "client_id": "r1"})
    error = await socket.until_type("error")
    assert error["code"] == "conflict"
    assert error["request_type"] == "reply.regenerate" and error["client_id"] == "r1"
    # (The row says pending until its first checkpoint, about a second in.)
    assert error["reply_id"] == reply_id and error["status"] in ("pending", "streaming")
    assert "still being written" in error["message"]
    # Nothing was started or charged for it.
    assert await Message.objects.filter(role="assistant").acount() == 1
    assert await UsageRecord.objects.acount() == 1

    # Stopped, it can be regenerated (with the same id: the refusal used nothing up).
    await socket.send({"type": "reply.cancel", "reply_id": reply_id})
    assert (await socket.until_reply_ends())["status"] == "cancelled"
    await socket.send({"type": "reply.regenerate", "reply_id": reply_id, "client_id": "r1"})
    created = await socket.until_type("message.created")
    assert created["message"]["parent_id"] == socket.of_type("message.created")[0]["message"]["id"]
    await socket.send({"type": "reply.cancel", "reply_id": created["message"]["id"]})
    await socket.until(lambda f: f["type"] == "reply.failed" and f["reply_id"] != reply_id)
    await socket.close()
    assert await UsageRecord.objects.acount() == 2
