"""A socket's consumer cancelled while one of its handlers writes to Redis ends all the same.

On SIGTERM daphne cancels every open socket's consumer once, and waits for all of them to end,
with no time limit, before the process may exit. redis-py writes every command through
``asyncio.wait_for``, which on Python 3.11 returns the write's result instead of raising a
cancellation that lands as the write completes: a handler cancelled there (a socket joining
its groups as it opens, asking another task for a snapshot, announcing a turn) went on, and
its consumer went back to waiting for the socket's next message, for ever — a worker on the
Redis channel layer then never exited after SIGTERM. The consumers raise such a swallowed
cancellation once the handler returns (``consumers._raise_if_cancelled``).

Real parts: the Redis channel layer, the account's socket opening (it joins the account's
group in Redis), cancelled at moments spread over its opening, as daphne cancels it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from chatsite.asgi import application
from conversations.generation import get_service
from conversations.models import User
from tests.servers import redis_url
from tests.support import TRUSTED_ORIGIN, client_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

TRIALS = 200


@pytest.fixture
def redis_layer(settings: Any) -> None:
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chatsite.layers.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": redis_url(), "socket_timeout": 15}]},
        }
    }


async def _ended(future: asyncio.Future[Any]) -> bool:
    done, _ = await asyncio.wait([future], timeout=1)
    return bool(done)


async def test_a_socket_cancelled_as_it_joins_its_group_in_redis_ends(
    redis_layer: None, simulator: str, alice: User
) -> None:
    client = await sync_to_async(client_for)(alice)
    headers = [
        (b"origin", TRUSTED_ORIGIN.encode()),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]
    service = get_service()
    await service.ensure_started()
    # How long an opening takes, up to its "ready", once warm: the cancels are spread over it.
    loop = asyncio.get_running_loop()
    for _ in range(2):
        communicator = WebsocketCommunicator(application, "/ws/account/", headers=headers)
        began = loop.time()
        assert (await communicator.connect(timeout=10))[0]
        await communicator.receive_json_from()
        opening = loop.time() - began
        await communicator.disconnect()

    hung = 0
    try:
        for trial in range(TRIALS):
            communicator = WebsocketCommunicator(application, "/ws/account/", headers=headers)
            await communicator.send_input({"type": "websocket.connect"})
            await asyncio.sleep(1.5 * opening * trial / TRIALS)
            communicator.future.cancel()  # as daphne's shutdown does: once
            if not await _ended(communicator.future):
                hung += 1
                while not communicator.future.done():  # end it, for the next trial
                    communicator.future.cancel()
                    await asyncio.sleep(0.01)
        assert hung == 0, f"{hung} of {TRIALS} sockets did not end when cancelled"
    finally:
        await service.stop()
