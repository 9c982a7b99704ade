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
import time
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from conversations import actions
from conversations.models import Conversation, Message, UsageAccount, UsageRecord, User
from simulator.testing import running_simulator
from tests import servers
from tests.pgproxy import PgProxy, pg_proxy
from tests.servers import WorkerSocket, daphne_worker, redis_url, session_cookie
from tests.support import SIM_KEY, open_socket

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(150),
    pytest.mark.filterwarnings("ignore:Overriding setting DATABASES"),
]

ANSWER = " ".join(f"word{i}" for i in range(600))  # 15 s at 40 tokens a second
TIMERS = {"GENERATION_HEARTBEAT_SECONDS": "1", "GENERATION_STALE_SECONDS": "3"}


async def _until(condition: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := await sync_to_async(condition)()):
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.1)
    return found


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


@pytest.fixture
def proxy(proxied_pool: PgProxy, generation_service: Any) -> Iterator[PgProxy]:
    yield proxied_pool
    proxied_pool.restore()


async def test_continued_on_its_own_worker_the_old_task_gives_way(
    settings: Any,
    alice: User,
    alice_conversation: Conversation,
    slow_simulator: str,
    proxy: PgProxy,
) -> None:
    """This process's writes (the event loop's pool) are cut off; its reads (the ORM) are not,
    as a worker whose database came back just as its user pressed Continue."""
    settings.GENERATION_HEARTBEAT_SECONDS = 3600  # the test reaps, as another worker would
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={ANSWER}]]"}
    )
    await socket.until_type("reply.delta")
    reply_id = socket.of_type("message.created")[1]["message"]["id"]
    await _until(lambda: Message.objects.get(pk=reply_id).content != "")
    await asyncio.to_thread(proxy.cut)
    await asyncio.sleep(1.0)
    assert len(await sync_to_async(actions.reap_stale_replies)(0.5)) == 1
    kept = await Message.objects.aget(pk=reply_id)
    assert kept.status == Message.Status.INTERRUPTED

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

    await _until(lambda: not UsageRecord.objects.filter(message_id=reply_id, state="reserved"))
    await asyncio.sleep(0.5)  # the old task's own write, refused, has been tried
    reply = await Message.objects.aget(pk=reply_id)
    assert reply.status == Message.Status.COMPLETE
    assert reply.content == kept.content + ANSWER and reply.seq == completed["seq"]
    await _charged(alice, reply_id)
    await socket.close()


@pytest.fixture
def worker_proxy() -> Iterator[PgProxy]:
    db = connection.settings_dict
    with pg_proxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)) as proxy:
        yield proxy


async def test_continued_on_another_worker_the_old_task_gives_way(
    alice: User, alice_conversation: Conversation, worker_proxy: PgProxy
) -> None:
    proxy = worker_proxy
    cookie = await sync_to_async(session_cookie)(alice)
    db = connection.settings_dict
    direct = servers.test_database_url()
    through_proxy = direct.replace(
        f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/", f"@127.0.0.1:{proxy.port}/"
    )
    with (
        running_simulator(api_key=SIM_KEY, tokens_per_s=40, seed=1) as upstream,
        daphne_worker(
            upstream, SIM_KEY, DATABASE_URL=through_proxy, REDIS_URL=redis_url(), **TIMERS
        ) as holder,
        daphne_worker(upstream, SIM_KEY, REDIS_URL=redis_url(), **TIMERS) as other,
    ):
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
            kept = await _until(
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

        await _until(lambda: not UsageRecord.objects.filter(message_id=reply_id, state="reserved"))
        await _until(
            lambda: UsageRecord.objects.filter(message_id=reply_id, outcome="cancelled").exists()
        )
        reply = await Message.objects.aget(pk=reply_id)
        assert reply.status == Message.Status.COMPLETE
        assert reply.content == kept.content + ANSWER and reply.seq == completed["seq"]
        await _charged(alice, reply_id)
        await on_holder.close()
        await on_other.close()
