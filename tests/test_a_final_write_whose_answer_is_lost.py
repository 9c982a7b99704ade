"""A reply's final write (its text, its status and its call's settlement: one statement) that
commits while the answer never comes back — the connection cut right after PostgreSQL committed
it — is tried again: the retry stores nothing twice, charges nothing twice, and the task knows
its write was made: the sockets are told the reply completed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conversations.models import Conversation, Message, UsageAccount, UsageRecord, User
from tests.pgproxy import PgProxy
from tests.support import open_socket

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore:Overriding setting DATABASES"),
]

ANSWER = " ".join(f"word{i}" for i in range(24))


async def test_a_final_write_whose_answer_is_lost_completes_the_reply_once(
    proxied_pool: PgProxy,
    alice: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
) -> None:
    lost = proxied_pool.lose_answer_once("finalized AS (")
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={ANSWER}]]"}
    )
    end = await socket.until_reply_ends(timeout=30)
    assert lost.is_set(), "the final write's answer was not lost"
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
    await socket.close()
