"""A websocket that breaks the protocol is closed with a close frame saying why, not dropped.

daphne's websockets are autobahn's, whose default (``failByDrop``) answers a protocol
violation by cutting the TCP connection: a frame past daphne's 1 MiB limit, text that is not
UTF-8, an unmasked frame. The client saw only an abnormal closure (1006) and could not tell
why. With :func:`install`, autobahn sends the close frame the WebSocket standard names for the
violation (1009 Message Too Big, 1007, 1002) and then closes; the app's consumer is told the
socket went, as for any close. Installed once, by ``chatsite/asgi.py``.
"""

from __future__ import annotations

from typing import Any

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    from daphne.ws_protocol import WebSocketFactory

    reset = WebSocketFactory.resetProtocolOptions

    def reset_to_closing_with_a_reason(self: Any) -> None:
        reset(self)
        self.failByDrop = False

    WebSocketFactory.resetProtocolOptions = reset_to_closing_with_a_reason
    _installed = True
