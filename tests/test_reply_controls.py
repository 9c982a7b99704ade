"""Stop, retry with the same id, and the ledger row each call leaves."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import Conversation, Message, UsageRecord, User
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

LONG = " ".join(f"w{i}" for i in range(300))


async def test_a_reply_can_be_stopped_from_another_socket_and_is_charged_what_it_used(
    alice: User, alice_conversation: Conversation, slow_simulator: str, generation_service: Any
) -> None:
    sender = await open_socket(alice, alice_conversation)
    other = await open_socket(alice, alice_conversation)
    await sender.send(
        {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={LONG}]]"}
    )
    await other.until_type("reply.delta")
    reply_id = other.of_type("message.created")[1]["message"]["id"]
    await other.send({"type": "reply.cancel", "reply_id": reply_id})
    end = await sender.until_reply_ends()
    assert end["type"] == "reply.failed" and end["status"] == "cancelled"
    await sender.close()
    await other.close()

    reply = await Message.objects.aget(pk=reply_id)
    assert reply.status == Message.Status.CANCELLED
    assert reply.content and LONG.startswith(reply.content) and reply.content != LONG
    record = await UsageRecord.objects.aget(message_id=reply_id)
    assert record.state == UsageRecord.State.SETTLED
    assert record.outcome == "cancelled"
    assert record.estimated  # no provider usage for a stopped stream
    assert record.reserved_tokens == 0
    assert 0 < record.completion_tokens < 300


async def test_the_same_client_id_three_times_is_one_generation_and_one_charge(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    first = await open_socket(alice, alice_conversation)
    second = await open_socket(alice, alice_conversation)
    frame = {"type": "message.send", "client_id": "same-id", "content": "[[sim: say=Once only.]]"}
    await first.send(frame)
    await second.send(frame)
    await first.send(frame)
    await first.until_reply_ends()
    # Every frame each socket was sent: whichever send was handled first created the message
    # (shown to both sockets), and each of the other two was answered as a duplicate, on the
    # socket that sent it. (Which one wins the race varies: counting only the first socket's
    # frames, the test failed whenever its own send won.)
    for socket in (first, second):
        while not await socket.communicator.receive_nothing(timeout=1):
            await socket.receive()
    duplicates = [
        f["message"]["role"]
        for f in first.frames + second.frames
        if f["type"] == "message.created" and f.get("duplicate")
    ]
    assert sorted(duplicates) == ["assistant", "assistant", "user", "user"]
    await first.close()
    await second.close()
    assert await Message.objects.filter(conversation=alice_conversation, role="user").acount() == 1
    assert (
        await Message.objects.filter(conversation=alice_conversation, role="assistant").acount()
        == 1
    )
    assert await UsageRecord.objects.filter(purpose="chat").acount() == 1


async def test_a_message_cannot_be_sent_under_a_reply_still_streaming(
    alice: User, alice_conversation: Conversation, slow_simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={LONG}]]"}
    )
    await socket.until_type("reply.delta")
    await socket.send({"type": "message.send", "client_id": "c2", "content": "And another thing"})
    error = await socket.until_type("error")
    assert error["code"] == "conflict" and error["client_id"] == "c2"
    reply_id = socket.of_type("message.created")[1]["message"]["id"]
    await socket.send({"type": "reply.cancel", "reply_id": reply_id})
    await socket.until_reply_ends()
    await socket.close()
