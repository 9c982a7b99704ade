"""A message whose action is still running when its worker is told to stop (SIGTERM: a
deploy) gets its reply: the action commits the message and its pending reply, and the reply is
started and written within the grace period, though daphne cancels the socket meanwhile.

Before, the socket's cancellation skipped the reply's start: the message and a reply pending
for ever were stored, the page's resend of the frame was a duplicate that started nothing, and
the conversation refused every message (a reply in progress) until the reaper gave the reply
up, with no text to continue."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from conversations.models import Conversation, Message, UsageRecord, User
from simulator.testing import running_simulator
from tests.servers import WorkerSocket, daphne_worker, session_cookie, worker_process
from tests.support import SIM_KEY, usage_account

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def _connect() -> psycopg.Connection[Any]:
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=int(db["PORT"] or 5432),
        user=db["USER"],
        dbname=db["NAME"],
        password=db["PASSWORD"] or None,
        autocommit=True,
    )


async def _until_a_session_waits_for_a_lock() -> None:
    with _connect() as probe:
        for _ in range(500):
            row = probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            ).fetchone()
            if row and row[0]:
                return
            await asyncio.sleep(0.01)
    raise AssertionError("the action never waited")


async def test_the_reply_is_started_and_written_within_the_grace(
    alice: User, alice_conversation: Conversation, chat_model: Any
) -> None:
    await sync_to_async(usage_account)(alice)
    cookie = await sync_to_async(session_cookie)(alice)
    frame = {"type": "message.send", "client_id": "c1", "content": "[[sim: say=Hello there.]]"}
    with (
        running_simulator(api_key=SIM_KEY) as upstream,
        daphne_worker(upstream, SIM_KEY, SHUTDOWN_GRACE_SECONDS="10") as base,
    ):
        socket = await WorkerSocket.open(base, alice_conversation.id, cookie)
        # The admission waits a moment (another call of Alice's being admitted).
        holder = _connect()
        holder.autocommit = False
        holder.execute(
            "SELECT 1 FROM conversations_usageaccount WHERE user_id = %s FOR UPDATE", [alice.pk]
        )
        try:
            await socket.send(frame)
            await _until_a_session_waits_for_a_lock()
            server = worker_process(base)
            server.send_signal(signal.SIGTERM)  # a deploy, while the action waits
            await asyncio.sleep(1)  # daphne cancels its sockets meanwhile
        finally:
            holder.commit()
            holder.close()
        await asyncio.to_thread(server.wait, 30)

    [question] = [m async for m in Message.objects.filter(role="user")]
    reply = await Message.objects.aget(parent=question)
    assert (reply.status, reply.content) == ("complete", "Hello there."), reply.status
    record = await UsageRecord.objects.aget(message=reply)
    assert record.state == "settled" and record.outcome == "complete"
