"""The reaper reads the replies whose heartbeat is stale, then marks each ``interrupted`` in
a statement of its own. A reply whose task wrote it in between (a checkpoint or a heartbeat:
its process was only slow, not dead) is alive again by then, and is left alone.

Before, the reaper's write checked only that the reply was still streaming: it reaped a live
reply, settled its call from the text it had read before the write, and told every tab the
reply's server had stopped."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from django.db import connection

from conversations import actions
from conversations.models import Conversation, Message, UsageRecord, User
from tests.test_reaper import orphan_reply

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def _waiting_on_a_lock(session: psycopg.Connection[Any], pid: int) -> bool:
    row = session.execute(
        "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid]
    ).fetchone()
    return row is not None and row[0] == "Lock"


def test_a_reply_checkpointed_while_the_reaper_reads_it_is_not_reaped(
    alice: User, alice_conversation: Conversation
) -> None:
    reply = orphan_reply(alice, alice_conversation, heartbeat_age=120)
    dsn = connection.get_connection_params()
    writer = psycopg.connect(**{k: v for k, v in dsn.items() if k != "cursor_factory"})
    try:
        # The task's checkpoint, under way: the row locked, its new text not yet committed.
        writer.execute(
            "UPDATE conversations_message SET content = content || ' and the second',"
            " seq = 9, heartbeat_at = now() WHERE id = %s",
            [reply.pk],
        )
        reaped: list[Any] = []
        reaper_pid: list[int] = []

        def reap() -> None:
            from django.db import connection as reaper_connection

            reaper_connection.ensure_connection()
            reaper_pid.append(reaper_connection.connection.info.backend_pid)
            try:
                reaped.extend(actions.reap_stale_replies(60))
            finally:
                reaper_connection.close()

        reaper = threading.Thread(target=reap)
        reaper.start()
        deadline = time.monotonic() + 20
        # The reaper has read the stale row and waits on the checkpoint's lock to write it.
        while not (reaper_pid and _waiting_on_a_lock(writer, reaper_pid[0])):
            assert reaper.is_alive() and time.monotonic() < deadline, "the reaper never waited"
            time.sleep(0.05)
        writer.commit()
        reaper.join(20)
    finally:
        writer.close()

    assert reaped == []
    reply.refresh_from_db()
    assert (reply.status, reply.seq) == (Message.Status.STREAMING, 9)
    assert reply.content == "The first half of an answer and the second"
    record = UsageRecord.objects.get(message=reply)
    assert record.state == UsageRecord.State.RESERVED
