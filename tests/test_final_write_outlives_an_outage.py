"""A reply that ends while the database cannot be reached is not lost: its final write (the
text, the status and the call's settlement, one statement) is tried again until the database
is back, and only then is `reply.completed` sent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection
from psycopg import sql

from conversations import pgpool
from conversations.models import Conversation, Message, UsageRecord, User
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

ANSWER = " ".join(f"word{i}" for i in range(24))  # ~0.6 s at the slow simulator's pace


class Outage:
    """The test database refusing connections, and the API pool's open ones cut: what the
    event loop's pool sees while PostgreSQL restarts. Django's own open connections stay."""

    def __init__(self) -> None:
        self.database = connection.settings_dict["NAME"]
        self.admin = psycopg.connect(
            pgpool.conninfo(), dbname="postgres", application_name="outage", autocommit=True
        )

    def begin(self) -> None:
        self._allow(False)
        self.admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = 'chat-api'",
            [self.database],
        )

    def end(self) -> None:
        self._allow(True)

    def _allow(self, allowed: bool) -> None:
        self.admin.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                sql.Identifier(self.database), sql.SQL("true" if allowed else "false")
            )
        )


@pytest.fixture
def outage() -> Iterator[Outage]:
    outage = Outage()
    try:
        yield outage
    finally:
        outage.end()
        outage.admin.close()


async def test_a_reply_ending_during_a_database_outage_is_saved_when_it_returns(
    alice: User,
    alice_conversation: Conversation,
    slow_simulator: str,
    generation_service: Any,
    outage: Outage,
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={ANSWER}]]"}
    )
    await socket.until_type("reply.delta")
    reply_id = socket.of_type("message.created")[1]["message"]["id"]

    await asyncio.to_thread(outage.begin)
    # The answer ends ~1 s in. Its final write waits for a connection for the pool's
    # ACQUIRE_TIMEOUT_S (5 s), fails, and is tried again 0.5 s later: an outage longer than
    # that is one that only the retry survives.
    await asyncio.sleep(pgpool.ACQUIRE_TIMEOUT_S + 2)
    assert not socket.of_type("reply.completed"), "completed before anything was saved"
    assert not socket.of_type("reply.failed")
    await asyncio.to_thread(outage.end)

    completed = await socket.until_type("reply.completed", timeout=20)
    assert completed["reply_id"] == reply_id
    reply = await Message.objects.aget(pk=reply_id)
    assert reply.status == Message.Status.COMPLETE
    assert reply.content == ANSWER
    assert reply.seq == completed["seq"]
    record = await UsageRecord.objects.aget(message_id=reply_id)
    assert record.state == UsageRecord.State.SETTLED
    assert record.completion_tokens > 0 and not record.estimated
    await socket.close()


async def test_a_reply_ending_during_a_long_outage_is_saved_when_it_returns(
    alice: User,
    alice_conversation: Conversation,
    slow_simulator: str,
    generation_service: Any,
    outage: Outage,
) -> None:
    """A restart that takes a minute (an upgrade): the final write does not give up while the
    process holds the reply (it gave up after ~45 s, and the reply, whole in memory, was left to
    the reaper with what had been checkpointed — nothing, here)."""
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={ANSWER}]]"}
    )
    await socket.until_type("reply.delta")
    reply_id = socket.of_type("message.created")[1]["message"]["id"]

    await asyncio.to_thread(outage.begin)
    await asyncio.sleep(55)
    assert not socket.of_type("reply.completed") and not socket.of_type("reply.failed")
    await asyncio.to_thread(outage.end)

    completed = await socket.until_type("reply.completed", timeout=20)
    assert completed["reply_id"] == reply_id
    reply = await Message.objects.aget(pk=reply_id)
    assert reply.status == Message.Status.COMPLETE
    assert reply.content == ANSWER
    record = await UsageRecord.objects.aget(message_id=reply_id)
    assert record.state == UsageRecord.State.SETTLED
    await socket.close()
