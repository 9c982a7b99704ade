"""A worker told to stop (SIGTERM) lets its replies finish for the grace period, but its
sockets carry nothing more (daphne cancels their consumers at once): each is closed then with
4503 (``RESTART_CLOSE_CODE``), so that its page reconnects — behind the proxy, to a worker that follows
the reply still being written — instead of showing a connection that looks alive and brings
nothing until the process exits."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
import websockets
from asgiref.sync import sync_to_async

from conversations.consumers import RESTART_CLOSE_CODE
from conversations.models import Conversation, ModelConfig, User
from simulator.testing import running_simulator
from tests.servers import WorkerSocket, daphne_worker, session_cookie, worker_process
from tests.support import SIM_KEY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

GRACE_S = 15
LONG = " ".join(["long"] * 400)  # 20 s at 20 tokens a second


async def closed_with(socket: WorkerSocket, within: float) -> int | None:
    """The close code the server sent ``socket`` within ``within`` seconds (frames skipped)."""
    deadline = time.monotonic() + within
    while True:
        try:
            await socket.receive(timeout=max(0.01, deadline - time.monotonic()))
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None
        except TimeoutError:
            return None


async def test_sigterm_closes_the_sockets_at_once_for_them_to_reconnect(
    alice: User, chat_model: ModelConfig
) -> None:
    chat = await Conversation.objects.acreate(owner=alice, model=chat_model, title="long")
    cookie = await sync_to_async(session_cookie)(alice)
    with (
        running_simulator(api_key=SIM_KEY, tokens_per_s=20) as upstream,
        daphne_worker(upstream, SIM_KEY, SHUTDOWN_GRACE_SECONDS=str(GRACE_S)) as base,
    ):
        watching = await WorkerSocket.open(base, chat.id, cookie)
        account = await WorkerSocket.open_account(base, cookie)
        await watching.send(
            {"type": "message.send", "client_id": "l", "content": f"[[sim: say={LONG}]]"}
        )
        await watching.until("reply.delta")
        server = worker_process(base)
        server.send_signal(signal.SIGTERM)
        # Long before the grace ends (the reply still being written holds the process).
        codes = await asyncio.gather(closed_with(watching, 5), closed_with(account, 5))
        assert server.is_running()
        assert codes == [RESTART_CLOSE_CODE, RESTART_CLOSE_CODE]
        await asyncio.to_thread(server.wait, GRACE_S + 15)
