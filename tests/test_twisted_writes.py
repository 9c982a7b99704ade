"""daphne's TCP transport sends a frame when it is written, buffers only what the socket does
not take, and never lets a later write overtake buffered bytes (chatsite/twisted_writes.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet import tcp

from chatsite import twisted_writes


class Reactor:
    """Records what a transport asks of the reactor (only writability matters here)."""

    def __init__(self) -> None:
        self.writing: list[Any] = []

    def addWriter(self, writer: Any) -> None:  # Twisted's names
        self.writing.append(writer)

    def removeWriter(self, writer: Any) -> None:
        self.writing.remove(writer)

    def addReader(self, reader: Any) -> None:
        pass

    def removeReader(self, reader: Any) -> None:
        pass


class Protocol:
    def makeConnection(self, transport: Any) -> None:
        pass


@pytest.fixture
def pair() -> Iterator[tuple[tcp.Connection, socket.socket, Reactor]]:
    twisted_writes.install()
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    peer.setblocking(False)
    reactor = Reactor()
    connection = tcp.Connection(ours, Protocol(), reactor=reactor)
    connection.connected = True
    yield connection, peer, reactor
    ours.close()
    peer.close()


def drain(peer: socket.socket) -> bytes:
    received = b""
    while True:
        try:
            chunk = peer.recv(1 << 20)
        except BlockingIOError:
            return received
        if not chunk:
            return received
        received += chunk


def test_a_frame_is_on_the_socket_when_write_returns(
    pair: tuple[tcp.Connection, socket.socket, Reactor],
) -> None:
    connection, peer, reactor = pair
    connection.write(b"frame one")
    connection.write(b"frame two")
    assert drain(peer) == b"frame oneframe two"
    assert reactor.writing == []  # no round through the reactor, nothing left buffered


def test_what_the_socket_does_not_take_waits_and_nothing_overtakes_it(
    pair: tuple[tcp.Connection, socket.socket, Reactor],
) -> None:
    connection, peer, reactor = pair
    big = bytes(range(256)) * 40_000  # 10 MB: more than the socket buffers hold
    connection.write(big)
    assert reactor.writing == [connection]  # the rest waits for writability
    connection.write(b"after")  # must queue behind the rest, not jump ahead
    received = drain(peer)
    assert 0 < len(received) < len(big)
    while reactor.writing:
        connection.doWrite()
        received += drain(peer)
    assert received == big + b"after"
