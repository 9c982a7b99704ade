"""The reaper reads the replies whose heartbeat is stale, then marks each ``interrupted`` in
a statement of its own. A reply whose task wrote it in between (a checkpoint or a heartbeat:
its process was only slow, not dead) is alive again by then, and is left alone.

Before, the reaper's write checked only that the reply was still streaming: it reaped a live
reply, settled its call from the text it had read before the write, and told every tab the
reply's server had stopped."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from conversations import actions
from conversations.models import Conversation, Message, UsageRecord, User
from tests.reaping import database_session, until_waiting_on_a_lock
from tests.test_reaper import orphan_reply

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def test_a_reply_checkpointed_while_the_reaper_reads_it_is_not_reaped(
    alice: User, alice_conversation: Conversation
) -> None:
    reply = orphan_reply(alice, alice_conversation, heartbeat_age=120)
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
    with database_session() as writer:
        # The task's checkpoint, under way: the row locked, its new text not yet committed.
        writer.execute(
            "UPDATE conversations_message SET content = content || ' and the second',"
            " seq = 9, heartbeat_at = now() WHERE id = %s",
            [reply.pk],
        )
        reaper.start()
        # The reaper has read the stale row and waits on the checkpoint's lock to write it.
        until_waiting_on_a_lock(lambda: reaper_pid[0] if reaper_pid else None, lambda: False)
        writer.commit()
        reaper.join(20)

    assert reaped == []
    reply.refresh_from_db()
    assert (reply.status, reply.seq) == (Message.Status.STREAMING, 9)
    assert reply.content == "The first half of an answer and the second"
    record = UsageRecord.objects.get(message=reply)
    assert record.state == UsageRecord.State.RESERVED
