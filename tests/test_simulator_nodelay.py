"""The simulator's connections send at once (no Nagle delay on reused connections)."""

from __future__ import annotations

import socket

from simulator.server import bind_socket


def test_the_listening_socket_disables_nagle_for_the_connections_it_accepts() -> None:
    listener = bind_socket("127.0.0.1", 0)
    try:
        client = socket.create_connection(listener.getsockname()[:2])
        listener.setblocking(True)
        accepted, _ = listener.accept()
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        accepted.close()
        client.close()
    finally:
        listener.close()
