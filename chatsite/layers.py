"""The in-memory channel layer, with its expiry sweep throttled.

Channels' ``InMemoryChannelLayer`` walks every channel and group on every send and receive to
drop expired messages: O(sockets) per delta, O(sockets²) per second under load. Sweeping at most
once a second keeps expiry (60 s) meaningful at a fraction of the cost.
"""

from __future__ import annotations

import time

from channels.layers import InMemoryChannelLayer


class ThrottledInMemoryChannelLayer(InMemoryChannelLayer):
    SWEEP_INTERVAL = 1.0
    _last_sweep = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < self.SWEEP_INTERVAL:
            return
        self._last_sweep = now
        super()._clean_expired()
