"""The channel layers: in memory, with its expiry sweep throttled; Redis, whose receive always
ends when it is cancelled.

Channels' ``InMemoryChannelLayer`` walks every channel and group on every send and receive to
drop expired messages: O(sockets) per delta, O(sockets²) per second under load. Sweeping at most
once a second keeps expiry (60 s) meaningful at a fraction of the cost.

channels_redis serves all of a process's channels from one shared receive: whichever receiver
holds it sends ``BZPOPMIN`` to Redis, and redis-py writes every command through
``asyncio.wait_for``, which on Python 3.11 returns the write's result instead of raising a
cancellation that lands as the write completes. A receiver cancelled then went on, and waited
for its channel forever: a room's relay outlived its last socket (about one leave in a hundred
under traffic), and a closing socket's consumer could not end (channels awaits its receive).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer as _RedisChannelLayer

# How often a receive that survived its cancellation is cancelled again.
RECANCEL_INTERVAL = 0.05


class ThrottledInMemoryChannelLayer(InMemoryChannelLayer):
    SWEEP_INTERVAL = 1.0
    _last_sweep = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < self.SWEEP_INTERVAL:
            return
        self._last_sweep = now
        super()._clean_expired()


def cancel_until_done(task: asyncio.Future[Any]) -> None:
    """Cancel ``task``, and again until it has ended (for a task with no cleanup of its own to
    run: each cancel may interrupt the last)."""
    if task.done():
        return
    task.cancel()
    task.get_loop().call_later(RECANCEL_INTERVAL, cancel_until_done, task)


class RedisChannelLayer(_RedisChannelLayer):  # type: ignore[misc]
    async def receive(self, channel: str) -> dict[str, Any]:
        """channels_redis's receive, run as a task of its own: a cancel ends this at once, and
        the task is cancelled until it has ended (a message it had just taken is dropped, as
        any cancelled receive's)."""
        receiving = asyncio.ensure_future(super().receive(channel))
        try:
            await asyncio.wait([receiving])
        except asyncio.CancelledError:
            cancel_until_done(receiving)
            raise
        message: dict[str, Any] = receiving.result()
        return message
