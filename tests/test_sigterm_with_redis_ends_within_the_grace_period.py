"""A worker on the Redis channel layer (several workers' deployment) told to stop (SIGTERM)
exits within its grace period and a few seconds, however many sockets it holds — idle ones,
ones watching a reply, the account's socket — and its running replies are finished or kept as
interrupted, each charged."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

import psutil
import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, Message, ModelConfig, UsageRecord, User
from simulator.testing import running_simulator
from tests.servers import WorkerSocket, daphne_worker, redis_url, session_cookie, worker_process
from tests.support import SIM_KEY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

GRACE_S = 3
# What the drain may add to the grace period: stopped replies' final writes, sockets closing.
SLACK_S = 5
LONG = " ".join(["long"] * 400)  # 20 s at 20 tokens a second
SHORT = " ".join(["short"] * 30)  # 1.5 s


async def test_a_worker_on_redis_stops_within_its_grace_period(
    alice: User, bob: User, chat_model: ModelConfig
) -> None:
    chats = [
        await Conversation.objects.acreate(owner=alice, model=chat_model, title=name)
        for name in ("long", "short", "idle")
    ]
    long_chat, short_chat, idle_chat = chats
    cookie = await sync_to_async(session_cookie)(alice)
    with (
        running_simulator(api_key=SIM_KEY, tokens_per_s=20, seed=1) as upstream,
        daphne_worker(
            upstream, SIM_KEY, REDIS_URL=redis_url(), SHUTDOWN_GRACE_SECONDS=str(GRACE_S)
        ) as base,
    ):
        long = await WorkerSocket.open(base, long_chat.id, cookie)
        short = await WorkerSocket.open(base, short_chat.id, cookie)
        watchers = [await WorkerSocket.open(base, long_chat.id, cookie) for _ in range(10)]
        idle = [await WorkerSocket.open(base, idle_chat.id, cookie) for _ in range(20)]
        account = await WorkerSocket.open_account(base, cookie)
        await long.send(
            {"type": "message.send", "client_id": "l", "content": f"[[sim: say={LONG}]]"}
        )
        await short.send(
            {"type": "message.send", "client_id": "s", "content": f"[[sim: say={SHORT}]]"}
        )
        await long.until("reply.delta")
        await short.until("reply.delta")
        reply_id = long.frames[-1]["reply_id"]

        async def keep_syncing(watcher: WorkerSocket) -> None:
            # Sockets asking for the reply's state as the signal lands (a reconnect's sync):
            # their handlers are mid-way through a write to Redis when they are cancelled.
            with contextlib.suppress(Exception):
                while True:
                    await watcher.send({"type": "reply.sync", "reply_id": reply_id, "after_seq": 0})
                    await asyncio.sleep(0.005)

        syncing = [asyncio.ensure_future(keep_syncing(watcher)) for watcher in watchers]
        await asyncio.sleep(1)
        server = worker_process(base)

        async def connect_late() -> None:
            # Sockets opening as the signal lands (their consumers join groups in Redis).
            with contextlib.suppress(Exception):
                late.append(await WorkerSocket.open(base, idle_chat.id, cookie))

        late: list[WorkerSocket] = []
        opening = [asyncio.ensure_future(connect_late()) for _ in range(20)]
        await asyncio.sleep(0.02)
        began = time.monotonic()
        server.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(server.wait, GRACE_S + SLACK_S)
        except psutil.TimeoutExpired:
            pytest.fail(f"the worker had not exited {GRACE_S + SLACK_S} s after SIGTERM")
        took = time.monotonic() - began
        for task in syncing + opening:
            task.cancel()
        for socket in [long, short, *watchers, *idle, *late, account]:
            await socket.close()
    assert took < GRACE_S + SLACK_S
    short_reply = await Message.objects.aget(conversation=short_chat, role="assistant")
    long_reply = await Message.objects.aget(conversation=long_chat, role="assistant")
    assert short_reply.status == Message.Status.COMPLETE
    assert short_reply.content == SHORT
    assert long_reply.status == Message.Status.INTERRUPTED
    assert long_reply.error_code == "server_restart"
    assert long_reply.content and LONG.startswith(long_reply.content)
    assert await UsageRecord.objects.filter(state=UsageRecord.State.RESERVED).acount() == 0
