"""A frame over daphne's 1 MiB is not read: the worker closes the socket with 1009 (Message
Too Big, the WebSocket standard's code for it), and goes on serving; a text frame that is not
UTF-8 is closed with 1007. Before, both were dropped without a close frame (1006: the client
could not tell why; ``chatsite/twisted_websockets.py``). And once the close frame is out, the
worker reads nothing more: a control frame claiming a huge length, followed by a flood, is
closed at once, not read on while the worker waits for the client's close. A frame up to that size
but over ``MAX_FRAME_CHARS`` is read, and answered with an ``error`` frame
(tests/test_malformed_frames.py); the page never sends either (a message is at most 100,000
characters).

A real daphne worker and a real websocket client over TCP."""

from __future__ import annotations

import base64
import os
import socket
import struct
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import websockets
from asgiref.sync import sync_to_async

from conversations.consumers import MAX_FRAME_CHARS
from conversations.models import Conversation, ModelConfig, User
from simulator.testing import running_simulator
from tests.servers import WorkerSocket, daphne_worker, session_cookie
from tests.support import SIM_KEY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

DAPHNE_MAX_MESSAGE_BYTES = 1024 * 1024


async def _closed_with(socket: WorkerSocket) -> int:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await socket.receive()
    assert closed.value.rcvd is not None, "dropped without a close frame"
    return closed.value.rcvd.code


@pytest.fixture
def worker(chat_model: ModelConfig) -> Iterator[str]:
    with (
        running_simulator(api_key=SIM_KEY) as upstream,
        daphne_worker(upstream, SIM_KEY) as base,
    ):
        yield base


async def test_a_frame_over_a_mebibyte_closes_the_socket_and_the_worker_serves_on(
    alice: User, alice_conversation: Conversation, worker: str
) -> None:
    assert MAX_FRAME_CHARS * 4 < DAPHNE_MAX_MESSAGE_BYTES  # ours is read first, in any script
    cookie = await sync_to_async(session_cookie)(alice)
    socket = await WorkerSocket.open(worker, alice_conversation.id, cookie)
    await socket.connection.send("x" * (DAPHNE_MAX_MESSAGE_BYTES + 1))
    assert await _closed_with(socket) == 1009

    again = await WorkerSocket.open(worker, alice_conversation.id, cookie)
    await again.send({"type": "ping"})
    assert (await again.until("pong"))["type"] == "pong"
    await again.close()


async def test_a_text_frame_that_is_not_utf8_closes_the_socket_saying_so(
    alice: User, alice_conversation: Conversation, worker: str
) -> None:
    cookie = await sync_to_async(session_cookie)(alice)
    socket = await WorkerSocket.open(worker, alice_conversation.id, cookie)
    await socket.connection.send(b'{"type": "ping", "x": "\xff"}', text=True)
    assert await _closed_with(socket) == 1007


def _raw_socket(base: str, conversation_id: object, cookie: str) -> socket.socket:
    """A websocket opened by hand over TCP: it sends what a library never would."""
    url = urlsplit(base)
    sock = socket.create_connection((url.hostname, url.port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/conversations/{conversation_id}/ HTTP/1.1\r\nHost: {url.netloc}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {base}\r\nCookie: sessionid={cookie}\r\n\r\n"
        ).encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return sock


async def test_a_control_frame_claiming_a_huge_length_is_closed_at_once(
    alice: User, alice_conversation: Conversation, worker: str
) -> None:
    cookie = await sync_to_async(session_cookie)(alice)
    sock = _raw_socket(worker, alice_conversation.id, cookie)
    # A masked ping whose payload length says 2**40 bytes (a control frame has at most 125),
    # then a flood: the worker answers 1002 and closes, without waiting a second for a close
    # from this client (which never sends one) while buffering all it is sent.
    sock.sendall(b"\x89\xff" + struct.pack("!Q", 2**40) + os.urandom(4))
    started = time.monotonic()
    received = b""
    closed_after = None
    sock.settimeout(0.05)
    chunk = os.urandom(64 * 1024)
    while time.monotonic() - started < 3:
        try:
            sock.sendall(chunk)
        except OSError:
            closed_after = time.monotonic() - started
            break
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            closed_after = time.monotonic() - started
            break
        if not data:
            closed_after = time.monotonic() - started
            break
        received += data
    sock.close()
    assert received[:1] == b"\x88", received[:20]  # a close frame...
    assert struct.unpack("!H", received[2:4])[0] == 1002  # ...saying: protocol error
    assert closed_after is not None and closed_after < 0.5, closed_after  # not after ~1 s
