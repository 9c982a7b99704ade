"""A reply's final write whose connection stalls (the route drops its packets: no answer, no
error, the socket left open, as behind a load balancer that has lost its server) is given up
after ``DATABASE_STALL_TIMEOUT_SECONDS``, its connection closed, and tried again on a new one:
the reply is stored whole, charged once, and the sockets are told it completed. Before, the
write waited for the answer for ever: the reply stayed ``streaming`` with its text only in
memory."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conversations.models import Conversation, Message, UsageAccount, UsageRecord, User
from tests.pgproxy import PgProxy
from tests.support import open_socket

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(90),
    pytest.mark.filterwarnings("ignore:Overriding setting DATABASES"),
]

ANSWER = " ".join(f"word{i}" for i in range(24))


async def test_a_final_write_whose_connection_stalls_completes_the_reply_once(
    settings: Any,
    proxied_pool: PgProxy,
    alice: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
) -> None:
    settings.DATABASE_STALL_TIMEOUT_SECONDS = 1.0
    stalled = proxied_pool.stall_once("finalized AS (")
    socket = await open_socket(alice, alice_conversation)
    try:
        await socket.send(
            {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={ANSWER}]]"}
        )
        # The stalled connection is never restored meanwhile: only a new one gets through.
        end = await socket.until_reply_ends(timeout=40)
        assert stalled.is_set(), "the final write's connection did not stall"
        assert end["type"] == "reply.completed", end
        reply = await Message.objects.aget(pk=end["reply_id"])
        assert reply.status == Message.Status.COMPLETE
        assert reply.content == ANSWER
        assert reply.seq == end["seq"]

        record = await UsageRecord.objects.aget(message_id=reply.pk)
        assert record.state == UsageRecord.State.SETTLED
        assert record.outcome == "complete" and not record.estimated
        account = await UsageAccount.objects.aget(user_id=alice.pk)
        assert account.day_used == record.total_tokens  # charged once, reservation given back
        assert account.streams == 0
        await asyncio.sleep(0.5)  # nothing more comes: no second completion
        assert len(socket.of_type("reply.completed")) == 1
    finally:
        await asyncio.to_thread(proxied_pool.restore)
        await socket.close()
