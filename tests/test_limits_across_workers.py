"""200 concurrent requests of one user, split across two workers, never take the total charged
above the limit."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db.models import Sum

from conversations.models import (
    Conversation,
    ModelConfig,
    Policy,
    UsageAccount,
    UsageRecord,
    User,
    UserLimits,
)
from simulator.testing import running_simulator
from tests.servers import WorkerSocket, daphne_worker, redis_url, session_cookie
from tests.support import SIM_KEY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]
LIMIT = 5000
ANSWER = " ".join(["tokens"] * 50)  # ~100 tokens by DeepSeek's ratio


async def open_socket(
    base: str, conversation_id: object, cookie: str, gate: asyncio.Semaphore
) -> WorkerSocket:
    # Handshakes a few at a time (daphne drops one not accepted within 5 s, and a loaded test
    # box can take that long for 100 at once); the requests below are then sent all at once.
    async with gate:
        return await WorkerSocket.open(base, conversation_id, cookie)


async def one_request(socket: WorkerSocket) -> str:
    try:
        await socket.send(
            {
                "type": "message.send",
                "client_id": "c",
                "content": f"[[sim: say={ANSWER}]]",
                "params": {"max_tokens": 120},
            }
        )
        frame = await socket.until(("reply.completed", "reply.failed", "error"), timeout=90)
        return frame.get("code") or frame["type"]
    finally:
        await socket.close()


async def test_two_hundred_concurrent_requests_on_two_workers_never_overshoot(
    alice: User, chat_model: ModelConfig
) -> None:
    await Policy.objects.all().adelete()
    await UserLimits.objects.acreate(user=alice, tokens_per_day=LIMIT)
    conversations = await sync_to_async(Conversation.objects.bulk_create)(
        [Conversation(owner=alice, model=chat_model, title=f"c{i}") for i in range(200)]
    )
    cookie = await sync_to_async(session_cookie)(alice)
    with (
        running_simulator(api_key=SIM_KEY, tokens_per_s=200, seed=5) as upstream,
        daphne_worker(upstream, SIM_KEY, REDIS_URL=redis_url()) as a,
        daphne_worker(upstream, SIM_KEY, REDIS_URL=redis_url()) as b,
    ):
        gate = asyncio.Semaphore(20)
        sockets = await asyncio.gather(
            *(
                open_socket(a if i % 2 else b, c.id, cookie, gate)
                for i, c in enumerate(conversations)
            )
        )
        outcomes = await asyncio.gather(*(one_request(socket) for socket in sockets))
    completed = outcomes.count("reply.completed")
    refused = outcomes.count("quota_exceeded")
    assert completed + refused == 200, outcomes
    assert completed >= 5 and refused >= 100
    charged = await UsageRecord.objects.filter(user=alice).aaggregate(
        total=Sum("total_tokens"), reserved=Sum("reserved_tokens")
    )
    assert charged["reserved"] == 0
    assert charged["total"] <= LIMIT
    account = await UsageAccount.objects.aget(user=alice)
    assert account.day_used == charged["total"]
