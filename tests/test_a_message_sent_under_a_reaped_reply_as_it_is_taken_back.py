"""A message sent under a reply the reaper gave up on while its task lived is written from the
text the reaper kept, so the old task must not take that reply back (``actions._ANSWERED``). A
checkpoint of the old task that runs while the message is being sent cannot see the message
(it sees what had committed when it began): the sender says it on the reply's row instead,
its generation channel cleared under the row's lock, which the checkpoint waits on and then
re-checks. So the reply stays as the reaper kept it.

Before, such a checkpoint took the reply back (``streaming``, the task's longer text) above a
message answered from its shorter text."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction

from conversations import actions
from conversations.models import Conversation, Message, UsageRecord, User
from tests.test_reaper import orphan_reply

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def _session() -> psycopg.Connection[Any]:
    params = connection.get_connection_params()
    return psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"})


def test_a_checkpoint_during_the_send_leaves_the_reaped_reply_as_it_was_kept(
    alice: User, alice_conversation: Conversation
) -> None:
    reply = orphan_reply(alice, alice_conversation, heartbeat_age=120)
    assert [r[1] for r in actions.reap_stale_replies(60)] == [reply.pk]
    record = UsageRecord.objects.get(message=reply)
    kept = Message.objects.get(pk=reply.pk)
    # The old task's next checkpoint: more text than the reaper kept, on its own channel.
    state = actions.checkpoint(
        reply.pk,
        content=kept.content + " and the rest, streamed while cut off",
        reasoning="",
        tool_calls=None,
        seq=kept.seq + 5,
        record_id=record.pk,
    )
    params = [*actions.checkpoint_columns([state]), kept.generation_channel]
    checkpoint_session = _session()
    watcher = _session()
    done = threading.Event()

    def run_checkpoint() -> None:
        checkpoint_session.execute(actions.CHECKPOINT_MANY_SQL, params)
        checkpoint_session.commit()
        done.set()

    checkpointer = threading.Thread(target=run_checkpoint)
    try:
        with transaction.atomic():
            actions.send_message(
                alice,
                alice_conversation.id,
                client_id="c2",
                content="Noted.",
                parent_id=reply.pk,
                channel="generation.this!y",
            )
            # The checkpoint begins while the message is not yet committed.
            checkpointer.start()
            pid = checkpoint_session.info.backend_pid
            deadline = time.monotonic() + 20
            while not done.is_set():
                row = watcher.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid]
                ).fetchone()
                if row is not None and row[0] == "Lock":
                    break  # it waits on the reply's row
                assert time.monotonic() < deadline, "the checkpoint neither ran nor waited"
                time.sleep(0.05)
        checkpointer.join(20)
        assert done.is_set()
    finally:
        checkpoint_session.close()
        watcher.close()

    reply = Message.objects.get(pk=reply.pk)
    assert (reply.status, reply.error_code) == ("interrupted", "worker_lost")
    assert (reply.content, reply.seq) == (kept.content, kept.seq)
    assert Message.objects.filter(parent_id=reply.pk, role="user").count() == 1
    record = UsageRecord.objects.get(pk=record.pk)
    assert record.state == UsageRecord.State.SETTLED  # not held again by a take-back


def test_a_send_after_the_take_back_waits_for_the_reply_like_any_other(
    alice: User, alice_conversation: Conversation
) -> None:
    """The other order: the checkpoint took the reply back (not yet committed) when the message
    is sent. The send waits on the row, then finds the reply being written again, and is
    refused as under any reply in progress; nothing is written under it."""
    reply = orphan_reply(alice, alice_conversation, heartbeat_age=120)
    assert [r[1] for r in actions.reap_stale_replies(60)] == [reply.pk]
    record = UsageRecord.objects.get(message=reply)
    kept = Message.objects.get(pk=reply.pk)
    state = actions.checkpoint(
        reply.pk,
        content=kept.content + " and the rest",
        reasoning="",
        tool_calls=None,
        seq=kept.seq + 5,
        record_id=record.pk,
    )
    checkpoint_session = _session()
    watcher = _session()
    outcome: list[BaseException | None] = []
    sender_pid: list[int] = []

    def send() -> None:
        from django.db import connection as sender_connection

        sender_connection.ensure_connection()
        sender_pid.append(sender_connection.connection.info.backend_pid)
        try:
            actions.send_message(
                alice,
                alice_conversation.id,
                client_id="c2",
                content="Noted.",
                parent_id=reply.pk,
                channel="generation.this!y",
            )
            outcome.append(None)
        except Exception as error:
            outcome.append(error)
        finally:
            sender_connection.close()

    sender = threading.Thread(target=send)
    try:
        checkpoint_session.execute(
            actions.CHECKPOINT_MANY_SQL,
            [*actions.checkpoint_columns([state]), kept.generation_channel],
        )
        sender.start()
        deadline = time.monotonic() + 20
        while not outcome:
            row = (
                watcher.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [sender_pid[0]]
                ).fetchone()
                if sender_pid
                else None
            )
            if row is not None and row[0] == "Lock":
                break  # the send waits on the reply's row
            assert time.monotonic() < deadline, "the send neither ended nor waited"
            time.sleep(0.05)
        checkpoint_session.commit()
        sender.join(20)
    finally:
        checkpoint_session.close()
        watcher.close()

    assert isinstance(outcome[0], actions.Conflict), outcome
    assert "in progress" in str(outcome[0])
    assert not Message.objects.filter(parent_id=reply.pk).exists()
    reply = Message.objects.get(pk=reply.pk)
    assert reply.status == Message.Status.STREAMING and reply.seq == kept.seq + 5
