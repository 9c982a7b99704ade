"""A worker cut off from PostgreSQL for longer than the reaper waits has its live reply reaped by
another worker: ``interrupted`` (``worker_lost``), the text last checkpointed, the call settled
from an estimate of it. The reply's task lives on. Once the database is reachable again, its next
checkpoint (about a second later) takes the row back: ``streaming`` again, no error, its text
so far — so the page, the reaper and a crash see the reply as it is, not as it was when the
worker was cut off. Reaped again after that (cut off again, or its process now dead), the call
is settled again from the text the row holds then; and the task's final write still wins.

Before, the checkpoints of a reaped reply were refused (they never wrote over a final row): the
row stayed ``interrupted`` with the old text until the very end, and a crash meanwhile lost
everything written since the cut — and the charge stayed the first estimate."""

from __future__ import annotations

import asyncio

import pytest

from conversations import quota
from conversations.models import Conversation, Message, UsageAccount, UsageRecord, User
from tests.pgproxy import PgProxy
from tests.reaping import (
    ANSWER,
    no_heartbeat,
    proxy,
    reaped_while_cut_off,
    streaming_reply,
    taken_back,
    until,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore:Overriding setting DATABASES"),
]

__all__ = ["no_heartbeat", "proxy"]  # fixtures, used by name


async def test_a_reaped_reply_is_taken_back_by_its_tasks_next_checkpoint(
    no_heartbeat: None,
    alice: User,
    alice_conversation: Conversation,
    slow_simulator: str,
    proxy: PgProxy,
) -> None:
    socket, reply_id = await streaming_reply(alice, alice_conversation)

    reaped = await reaped_while_cut_off(proxy, reply_id)
    record = await UsageRecord.objects.aget(message_id=reply_id)
    assert record.state == UsageRecord.State.SETTLED and record.estimated
    assert record.completion_tokens == quota.estimate_tokens(reaped.content)

    # Back in reach: the task's next checkpoint takes the row back while it still streams.
    await asyncio.to_thread(proxy.restore)
    taken = await until(lambda: taken_back(reply_id, len(reaped.content)), timeout=8)
    assert taken.error_code == "" and taken.error_message == ""
    assert taken.content.startswith(reaped.content) and ANSWER.startswith(taken.content)
    assert taken.content != ANSWER  # not the final write: the reply is still being written
    assert taken.seq > reaped.seq and taken.heartbeat_at is not None

    # Reaped again (cut off again, or its process died now): the row keeps the text taken
    # back, and the call is settled again from it — counts set, not added.
    again = await reaped_while_cut_off(proxy, reply_id)
    assert len(again.content) >= len(taken.content)
    record = await UsageRecord.objects.aget(pk=record.pk)
    assert record.state == UsageRecord.State.SETTLED and record.estimated
    assert record.completion_tokens == quota.estimate_tokens(again.content)
    account = await UsageAccount.objects.aget(user_id=alice.pk)
    assert (account.day_used, account.month_used) == (record.total_tokens,) * 2

    # The task's final write still wins, charged what the provider counted.
    await asyncio.to_thread(proxy.restore)
    completed = await socket.until(
        lambda f: f["type"] == "reply.completed" and f["reply_id"] == reply_id, timeout=40
    )
    reply = await Message.objects.aget(pk=reply_id)
    assert reply.status == Message.Status.COMPLETE and reply.content == ANSWER
    assert reply.seq == completed["seq"] and reply.error_code == ""
    record = await UsageRecord.objects.aget(pk=record.pk)
    assert record.outcome == "complete" and not record.estimated
    assert record.completion_tokens == completed["usage"]["completion_tokens"]
    account = await UsageAccount.objects.aget(user_id=alice.pk)
    assert (account.day_used, account.month_used) == (record.total_tokens,) * 2
    assert account.streams == 0
    await socket.close()
