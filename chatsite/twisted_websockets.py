"""A websocket that breaks the protocol is told why, then closed: not dropped without a word,
and not read on.

daphne's websockets are autobahn's, whose default (``failByDrop``) answers a protocol
violation by cutting the TCP connection: a frame past daphne's 1 MiB limit, text that is not
UTF-8, an unmasked frame. The client saw only an abnormal closure (1006) and could not tell
why. Turning ``failByDrop`` off alone makes autobahn send the close frame the WebSocket
standard names (1009 Message Too Big, 1007, 1002) and then wait up to a second for the
client's own close, reading on meanwhile: a control frame claiming a huge length had every
byte that followed buffered for that second, whatever daphne's limits.

With :func:`install`, a failed connection gets its close frame, and is then closed at once
without reading more (Twisted's ``loseConnection``: what is written goes out first). The app's
consumer is told the socket went, as for any close. Installed once, by ``chatsite/asgi.py``.
"""

from __future__ import annotations

from typing import Any

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

    reset = WebSocketFactory.resetProtocolOptions

    def reset_to_closing_with_a_reason(self: Any) -> None:
        reset(self)
        self.failByDrop = False

    fail = WebSocketProtocol._fail_connection

    def fail_saying_why(self: Any, *args: Any, **kwargs: Any) -> None:
        fail(self, *args, **kwargs)  # the close frame, written at once
        self.dropConnection(abort=False)  # then no more reading: closed once it is out

    WebSocketFactory.resetProtocolOptions = reset_to_closing_with_a_reason
    WebSocketProtocol._fail_connection = fail_saying_why
    _installed = True
