"""On SIGTERM a worker lets running replies finish for a grace period, then keeps the rest
as interrupted; nothing is lost."""

from __future__ import annotations

import asyncio
import signal

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, Message, ModelConfig, UsageRecord, User
from simulator.testing import running_simulator
from tests.servers import WorkerSocket, daphne_worker, session_cookie, worker_process
from tests.support import SIM_KEY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


async def test_sigterm_finishes_short_replies_and_checkpoints_long_ones(
    alice: User, chat_model: ModelConfig
) -> None:
    short_chat = await Conversation.objects.acreate(owner=alice, model=chat_model, title="short")
    long_chat = await Conversation.objects.acreate(owner=alice, model=chat_model, title="long")
    cookie = await sync_to_async(session_cookie)(alice)
    with (
        running_simulator(api_key=SIM_KEY, tokens_per_s=20, seed=1) as upstream,
        daphne_worker(upstream, SIM_KEY, SHUTDOWN_GRACE_SECONDS="3") as base,
    ):
        short = await WorkerSocket.open(base, short_chat.id, cookie)
        long = await WorkerSocket.open(base, long_chat.id, cookie)
        await long.send(
            {
                "type": "message.send",
                "client_id": "l",
                "content": "[[sim: say=" + " ".join(["long"] * 400) + "]]",
            }
        )
        await short.send(
            {
                "type": "message.send",
                "client_id": "s",
                "content": "[[sim: say=" + " ".join(["short"] * 30) + "]]",
            }
        )
        await long.until("reply.delta")
        await short.until("reply.delta")
        server = worker_process(base)
        server.send_signal(signal.SIGTERM)
        await asyncio.to_thread(server.wait, 30)
    short_reply = await Message.objects.aget(conversation=short_chat, role="assistant")
    long_reply = await Message.objects.aget(conversation=long_chat, role="assistant")
    assert short_reply.status == Message.Status.COMPLETE
    assert short_reply.content == " ".join(["short"] * 30)
    assert long_reply.status == Message.Status.INTERRUPTED
    assert long_reply.error_code == "server_restart"
    assert long_reply.content and " ".join(["long"] * 400).startswith(long_reply.content)
    assert await UsageRecord.objects.filter(state=UsageRecord.State.RESERVED).acount() == 0
