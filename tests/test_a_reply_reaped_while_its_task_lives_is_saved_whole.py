"""A worker cut off from PostgreSQL (its own connections only) for longer than the reaper
waits is given up on by another worker's reaper: its reply is marked ``interrupted``
(``worker_lost``) with the text last checkpointed, and its call settled from an estimate of
that text. The reply's task is still alive, holding the whole answer and the provider's usage;
once the database is reachable again its final write wins — the whole text, ``complete``, the
finish reason — and the call is charged what it used, the difference from the reaper's
settlement and no more. A reply continued meanwhile (a call of its own, another task's) is
left to that task; the first call is still charged what it used.

Before, the final write found the row final and did nothing: the text after the last
checkpoint was lost, and the call charged only the reaper's estimate."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from conversations import actions
from conversations.models import Conversation, Message, UsageAccount, UsageRecord, User
from tests.pgproxy import PgProxy
from tests.reaping import no_heartbeat, proxy, until
from tests.support import Socket, open_socket, reply_text

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(90),
    pytest.mark.filterwarnings("ignore:Overriding setting DATABASES"),
]

ANSWER = " ".join(f"word{i}" for i in range(100))  # ~2.5 s at the slow simulator's pace

__all__ = ["no_heartbeat", "proxy"]  # fixtures, used by name


async def _streamed_and_cut_off(proxy: PgProxy, socket: Socket) -> Message:
    """Send the question; once a checkpoint is saved, cut the worker off; return the reply
    once its whole answer has streamed (its final write now waits for the database)."""
    await socket.send(
        {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={ANSWER}]]"}
    )
    await socket.until_type("reply.delta")
    reply_id = socket.of_type("message.created")[1]["message"]["id"]
    await until(lambda: Message.objects.get(pk=reply_id).content != "")
    await asyncio.to_thread(proxy.cut)
    await socket.until(lambda f: reply_text(socket.frames, reply_id) == ANSWER, timeout=20)
    await asyncio.sleep(1.0)  # older than the reaper's delay below
    reaped = await sync_to_async(actions.reap_stale_replies)(0.5)
    assert [str(r[1]) for r in reaped] == [reply_id]
    reply = await Message.objects.aget(pk=reply_id)
    assert reply.status == Message.Status.INTERRUPTED and reply.error_code == "worker_lost"
    assert reply.content != ANSWER and ANSWER.startswith(reply.content)
    return reply


async def test_a_reply_reaped_while_its_task_lives_is_saved_whole_and_charged_once(
    no_heartbeat: None,
    alice: User,
    alice_conversation: Conversation,
    slow_simulator: str,
    proxy: PgProxy,
) -> None:
    socket = await open_socket(alice, alice_conversation)
    reply = await _streamed_and_cut_off(proxy, socket)
    estimate = await UsageRecord.objects.aget(message_id=reply.pk)
    assert estimate.state == UsageRecord.State.SETTLED and estimate.estimated

    await asyncio.to_thread(proxy.restore)
    completed = await socket.until_type("reply.completed", timeout=20)
    assert completed["reply_id"] == str(reply.pk)
    await reply.arefresh_from_db()
    assert reply.status == Message.Status.COMPLETE
    assert reply.content == ANSWER
    assert reply.finish_reason == "stop" and reply.error_code == ""
    assert reply.seq == completed["seq"]

    record = await UsageRecord.objects.aget(pk=estimate.pk)
    assert record.state == UsageRecord.State.SETTLED
    assert record.outcome == "complete" and not record.estimated
    assert record.completion_tokens == completed["usage"]["completion_tokens"]
    assert record.prompt_tokens == completed["usage"]["prompt_tokens"]
    account = await UsageAccount.objects.aget(user_id=alice.pk)
    assert (account.day_used, account.month_used) == (record.total_tokens,) * 2
    assert account.streams == 0
    await socket.close()


async def test_a_reaped_reply_continued_meanwhile_is_left_to_its_continuation(
    no_heartbeat: None,
    alice: User,
    alice_conversation: Conversation,
    slow_simulator: str,
    proxy: PgProxy,
) -> None:
    socket = await open_socket(alice, alice_conversation)
    reply = await _streamed_and_cut_off(proxy, socket)
    first = await UsageRecord.objects.aget(message_id=reply.pk)
    kept = reply.content
    # Continued on another worker (its generation channel) before the cut-off worker is back.
    await sync_to_async(actions.continue_reply)(
        alice, alice_conversation.id, reply_id=reply.pk, channel="another-worker"
    )
    second = await UsageRecord.objects.exclude(pk=first.pk).aget(message_id=reply.pk)

    await asyncio.to_thread(proxy.restore)
    # The first call is charged what it used (the provider's counts) once the write is made.
    await until(lambda: not UsageRecord.objects.get(pk=first.pk).estimated)
    await asyncio.sleep(0.5)
    await reply.arefresh_from_db()
    assert reply.status == Message.Status.PENDING
    assert reply.generation_channel == "another-worker"
    assert reply.content == kept
    assert not socket.of_type("reply.completed")
    first = await UsageRecord.objects.aget(pk=first.pk)
    assert first.outcome == "complete" and first.completion_tokens > 0
    second = await UsageRecord.objects.aget(pk=second.pk)
    assert second.state == UsageRecord.State.RESERVED
    account = await UsageAccount.objects.aget(user_id=alice.pk)
    assert account.day_used == first.total_tokens + second.reserved_tokens
    assert account.streams == 1  # the continuation's
    await socket.close()
