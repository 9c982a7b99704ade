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
from typing import Any

import pytest
from django.db import transaction

from conversations import actions
from conversations.models import Conversation, Message, UsageRecord, User
from tests.reaping import database_session, until_waiting_on_a_lock
from tests.test_reaper import orphan_reply

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def _reaped_and_its_tasks_checkpoint(
    user: User, conversation: Conversation
) -> tuple[Message, UsageRecord, list[Any]]:
    """A reply reaped while its task lived, its call, and the parameters of that task's next
    checkpoint (more text than the reaper kept, on the task's own channel)."""
    reply = orphan_reply(user, conversation, heartbeat_age=120)
    assert [r[1] for r in actions.reap_stale_replies(60)] == [reply.pk]
    record = UsageRecord.objects.get(message=reply)
    kept = Message.objects.get(pk=reply.pk)
    state = actions.checkpoint(
        reply.pk,
        content=kept.content + " and the rest, streamed while cut off",
        reasoning="",
        tool_calls=None,
        seq=kept.seq + 5,
        record_id=record.pk,
    )
    return kept, record, [*actions.checkpoint_columns([state]), kept.generation_channel]


def _send_under(user: User, conversation: Conversation, reply: Message) -> None:
    actions.send_message(
        user,
        conversation.id,
        client_id="c2",
        content="Noted.",
        parent_id=reply.pk,
        channel="generation.this!y",
    )


def test_a_checkpoint_during_the_send_leaves_the_reaped_reply_as_it_was_kept(
    alice: User, alice_conversation: Conversation
) -> None:
    kept, record, checkpoint = _reaped_and_its_tasks_checkpoint(alice, alice_conversation)
    done = threading.Event()

    with database_session() as checkpoint_session:

        def run_checkpoint() -> None:
            checkpoint_session.execute(actions.CHECKPOINT_MANY_SQL, checkpoint)
            checkpoint_session.commit()
            done.set()

        checkpointer = threading.Thread(target=run_checkpoint)
        with transaction.atomic():
            _send_under(alice, alice_conversation, kept)
            # The checkpoint begins while the message is not yet committed.
            checkpointer.start()
            pid = checkpoint_session.info.backend_pid
            until_waiting_on_a_lock(lambda: pid, done.is_set)
        checkpointer.join(20)
        assert done.is_set()

    reply = Message.objects.get(pk=kept.pk)
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
    kept, _, checkpoint = _reaped_and_its_tasks_checkpoint(alice, alice_conversation)
    outcome: list[BaseException | None] = []
    sender_pid: list[int] = []

    def send() -> None:
        from django.db import connection as sender_connection

        sender_connection.ensure_connection()
        sender_pid.append(sender_connection.connection.info.backend_pid)
        try:
            _send_under(alice, alice_conversation, kept)
            outcome.append(None)
        except Exception as error:
            outcome.append(error)
        finally:
            sender_connection.close()

    sender = threading.Thread(target=send)
    with database_session() as checkpoint_session:
        checkpoint_session.execute(actions.CHECKPOINT_MANY_SQL, checkpoint)
        sender.start()
        until_waiting_on_a_lock(
            lambda: sender_pid[0] if sender_pid else None, lambda: bool(outcome)
        )
        checkpoint_session.commit()
        sender.join(20)

    assert isinstance(outcome[0], actions.Conflict), outcome
    assert "in progress" in str(outcome[0])
    assert not Message.objects.filter(parent_id=kept.pk).exists()
    reply = Message.objects.get(pk=kept.pk)
    assert reply.status == Message.Status.STREAMING and reply.seq == kept.seq + 5
