"""Websocket frames go to the socket when they are written, not on the reactor's next turn.

daphne serves on Twisted, whose TCP transport never writes in ``write()``: it buffers the bytes,
registers the socket for writability (an ``epoll_ctl``), writes them when the loop next comes
round, and unregisters it (another ``epoll_ctl``). asyncio's transports, like most servers,
try the socket at once and buffer only what it did not take. For a stream fanned out to many
sockets, one small frame per chunk per socket, Twisted's way was about a sixth of the worker's
CPU per chunk (bench/RESULTS.md, "Fourth session").

:func:`install` gives ``twisted.internet.tcp.Connection`` that behaviour: when nothing is
buffered (so no earlier bytes can be overtaken) and the connection is open, plain TCP and not
half-closed, ``write`` sends right away; whatever the socket does not take (or an error) goes
through Twisted's own ``write``, which buffers it and lets the reactor deal with it as before.
Installed once, by ``chatsite/asgi.py``, in the process daphne runs.
"""

from __future__ import annotations

from typing import Any

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    from twisted.internet import tcp

    buffered_write = tcp.Connection.write

    def write(self: Any, data: bytes) -> None:
        if (
            data
            and type(data) is bytes
            and self.connected
            and not self._writeDisconnected
            and not self.TLS
            and not self._tempDataBuffer
            and self.offset == len(self.dataBuffer)
        ):
            try:
                sent = self.socket.send(data)
            except OSError:  # would block, or the connection broke: the reactor's path says
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        buffered_write(self, data)

    tcp.Connection.write = write  # type: ignore[method-assign]
    _installed = True
