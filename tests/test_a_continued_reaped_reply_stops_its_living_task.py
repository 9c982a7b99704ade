"""A reply reaped while its task lives (its worker cut off from PostgreSQL for longer than the
reaper waits) shows ``interrupted``, and its user may press Continue — on the cut-off worker once
it is back, or on any other. The continuation is the reply's newest call: the task of the older
call stops at once (told through its worker's generation channel, or by the worker starting the
continuation itself), publishes nothing more, is charged what it used, and nothing it writes
lands on the row; the reply is the continuation's, streamed once.

Before, the old task streamed on beside the continuation (on its own worker, the continuation
never started at all: the worker already held a task for that reply) and was charged its whole
answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, Message, UsageAccount, UsageRecord, User
from tests.pgproxy import PgProxy
from tests.reaping import (
    ANSWER,
    holder_and_other,
    no_heartbeat,
    proxy,
    reaped_while_cut_off,
    streaming_reply,
    until,
    worker_proxy,
)
from tests.servers import WorkerSocket, session_cookie

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(150),
    pytest.mark.filterwarnings("ignore:Overriding setting DATABASES"),
]

__all__ = ["no_heartbeat", "proxy", "worker_proxy"]  # fixtures, used by name


def _continuation_frames(frames: list[dict[str, Any]], reply_id: str) -> list[dict[str, Any]]:
    """The reply's frames from the continuation's ``reply.started`` (the last one) on."""
    started = [
        i
        for i, f in enumerate(frames)
        if f["type"] == "reply.started" and f.get("reply_id") == reply_id
    ]
    assert len(started) >= 2, "the continuation never started"
    return [f for f in frames[started[-1] :] if f.get("reply_id") == reply_id]


def _as_shown(frames: list[dict[str, Any]], kept: str) -> str:
    """The reply as the socket shows it from the continuation's start on: the text kept, then
    what its frames add (a snapshot, if the socket resynced, replaces it), sequence unbroken."""
    text, seq = kept, frames[0]["seq"]
    for frame in frames[1:]:
        if frame["type"] == "reply.snapshot":
            text = text + frame["content"] if frame["mode"] == "append" else frame["content"]
            seq = frame["seq"]
        elif frame["type"] == "reply.delta":
            assert frame["seq"] == seq + 1, f"gap or duplicate: {seq} -> {frame['seq']}"
            seq, text = frame["seq"], text + frame.get("content", "")
    return text


async def _charged(user: User, reply_id: str) -> tuple[UsageRecord, UsageRecord]:
    first, second = [
        r async for r in UsageRecord.objects.filter(message_id=reply_id).order_by("pk")
    ]
    # The old call stopped when the continuation began, and paid what it used: more than the
    # reaper's estimate of the text it had checkpointed, less than the whole answer.
    assert first.state == UsageRecord.State.SETTLED and first.outcome == "cancelled"
    assert 0 < first.completion_tokens < len(ANSWER.split())
    assert second.outcome == "complete" and not second.estimated
    account = await UsageAccount.objects.aget(user_id=user.pk)
    assert account.day_used == first.total_tokens + second.total_tokens
    assert account.streams == 0
    return first, second


async def test_continued_on_its_own_worker_the_old_task_gives_way(
    no_heartbeat: None,
    alice: User,
    alice_conversation: Conversation,
    slow_simulator: str,
    proxy: PgProxy,
) -> None:
    """This process's writes (the event loop's pool) are cut off; its reads (the ORM) are not,
    as a worker whose database came back just as its user pressed Continue."""
    socket, reply_id = await streaming_reply(alice, alice_conversation)
    kept = await reaped_while_cut_off(proxy, reply_id)

    await socket.send({"type": "reply.continue", "reply_id": reply_id})
    await socket.until(
        lambda f: f["type"] == "reply.started" and len(socket.of_type(f["type"])) == 2
    )
    await asyncio.sleep(2)
    await asyncio.to_thread(proxy.restore)
    completed = await socket.until(
        lambda f: f["type"] == "reply.completed" and f["reply_id"] == reply_id, timeout=40
    )
    frames = _continuation_frames(socket.frames, reply_id)
    assert frames[0]["seq"] == kept.seq
    # One stream: the old task published nothing more once the continuation began.
    assert [f["type"] for f in frames if f["type"] != "reply.delta"] == [
        "reply.started",
        "reply.completed",
    ]
    assert _as_shown(frames, kept.content) == kept.content + ANSWER
    assert not [f for f in socket.frames if f["type"] == "reply.failed"]

    await until(lambda: not UsageRecord.objects.filter(message_id=reply_id, state="reserved"))
    await asyncio.sleep(0.5)  # the old task's own write, refused, has been tried
    reply = await Message.objects.aget(pk=reply_id)
    assert reply.status == Message.Status.COMPLETE
    assert reply.content == kept.content + ANSWER and reply.seq == completed["seq"]
    await _charged(alice, reply_id)
    await socket.close()


async def test_continued_on_another_worker_the_old_task_gives_way(
    alice: User, alice_conversation: Conversation, worker_proxy: PgProxy
) -> None:
    proxy = worker_proxy
    cookie = await sync_to_async(session_cookie)(alice)
    with holder_and_other(proxy, tokens_per_s=40) as (holder, other):
        on_holder = await WorkerSocket.open(holder, alice_conversation.id, cookie)
        on_other = await WorkerSocket.open(other, alice_conversation.id, cookie)
        await on_holder.send(
            {"type": "message.send", "client_id": "a", "content": f"[[sim: say={ANSWER}]]"}
        )
        await on_holder.until("reply.delta")
        reply_id = on_holder.frames[-1]["reply_id"]
        await asyncio.sleep(1.5)  # a checkpoint saved
        await asyncio.to_thread(proxy.cut)
        try:
            kept = await until(
                lambda: Message.objects.filter(pk=reply_id, status="interrupted").first()
            )
            assert kept.error_code == "worker_lost"
            # The user, on the other worker, continues the reply it shows interrupted.
            await on_other.send({"type": "reply.continue", "reply_id": reply_id})
            while True:
                started = await on_other.until("reply.started")
                if started["reply_id"] == reply_id and started["seq"] == kept.seq:
                    break
            await asyncio.sleep(3)  # the holder, still cut off, has heard of it
        finally:
            await asyncio.to_thread(proxy.restore)
        while True:
            completed = await on_other.until("reply.completed", timeout=40)
            if completed["reply_id"] == reply_id:
                break
        frames = _continuation_frames(on_other.frames, reply_id)
        assert _as_shown(frames, kept.content) == kept.content + ANSWER
        while True:  # the holder's socket is shown the continuation's end too
            end = await on_holder.until(("reply.completed", "reply.failed", "reply.snapshot"))
            if end["reply_id"] == reply_id and end.get("status") == "complete":
                break
        assert end["seq"] == completed["seq"]
        for socket in (on_holder, on_other):  # the reaper's word aside, no end but the last
            ends = [f for f in socket.frames if f["type"] == "reply.failed"]
            assert all(f["code"] == "worker_lost" for f in ends), ends

        await until(lambda: not UsageRecord.objects.filter(message_id=reply_id, state="reserved"))
        await until(
            lambda: UsageRecord.objects.filter(message_id=reply_id, outcome="cancelled").exists()
        )
        reply = await Message.objects.aget(pk=reply_id)
        assert reply.status == Message.Status.COMPLETE
        assert reply.content == kept.content + ANSWER and reply.seq == completed["seq"]
        await _charged(alice, reply_id)
        await on_holder.close()
        await on_other.close()
