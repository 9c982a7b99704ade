"""With Redis, a room's relay ends when the room's last socket leaves, however busy the layer.

channels_redis serves all of a process's channels from one shared receive, and whichever
receiver holds it writes ``BZPOPMIN`` to Redis through redis-py's ``asyncio.wait_for``; on
Python 3.11 a cancellation landing as that write completes is lost. A relay cancelled then
went on waiting for its channel, which nobody sends to any more: about one leave in a hundred
under traffic left a relay running for the life of the process (and a closing socket's own
receive, which channels awaits, could hang its consumer the same way). ``chatsite.layers``'s
Redis layer ends a cancelled receive at once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from conversations.generation import get_service, group_name
from tests.servers import redis_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

ROOMS = 400  # 9 to 12 of them outlived their room in each run before


class QuietSocket:
    async def deliver(self, event: dict[str, Any]) -> None:
        pass


async def test_every_relay_ends_with_its_rooms_last_socket(settings: Any) -> None:
    settings.CHANNEL_LAYERS = {
        "default": {
            # The layer of a deployment with REDIS_URL (chatsite/settings.py), in this process.
            "BACKEND": "chatsite.layers.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {"address": redis_url(), "socket_timeout": 15, "socket_connect_timeout": 5}
                ],
                "capacity": 1500,
                "expiry": 30,
            },
        }
    }
    service = get_service()
    await service.ensure_started()
    busy = [group_name(uuid.uuid4()) for _ in range(5)]
    listeners = [QuietSocket() for _ in busy]

    done = asyncio.Event()

    async def traffic() -> None:
        """Other workers' events to rooms that stay open: the shared receive is always busy.
        (Ended by ``done``, not a cancel: its writes to Redis would lose that too.)"""
        while not done.is_set():
            for group in busy:
                await service.layer.group_send(group, {"type": "x", "publisher": "elsewhere"})
            await asyncio.sleep(0)

    sending = None
    try:
        for group, socket in zip(busy, listeners, strict=True):
            await service.join(group, socket)
        sending = asyncio.ensure_future(traffic())
        relays = []
        for i in range(ROOMS):
            group, socket = group_name(uuid.uuid4()), QuietSocket()
            await service.join(group, socket)
            relays.append(service.rooms[group].relay)
            await asyncio.sleep(0.002 * (i % 7))  # the relay caught at any step of a receive
            await service.leave(group, socket)
        await asyncio.sleep(1)
        running = [relay for relay in relays if relay is not None and not relay.done()]
        assert not running, f"{len(running)} of {ROOMS} relays outlived their room"
    finally:
        done.set()
        if sending is not None:
            await sending
        for group, socket in zip(busy, listeners, strict=True):
            await service.leave(group, socket)
        await service.stop()
