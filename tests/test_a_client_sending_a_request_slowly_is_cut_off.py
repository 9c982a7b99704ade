"""A client has ``REQUEST_RECEIVE_TIMEOUT_SECONDS`` to send a request's headers and body, from
its first byte; past it the answer is a 408 (in the API's envelope on the API's paths) and the
connection is closed. Twisted's idle timeout (60 s) restarts with every byte, so a client that
sent a byte every few seconds held its connection for as long as it liked.

Long responses (a stream), websockets and a kept-alive connection's wait for its next request
are not bounded by it. A real daphne worker and raw sockets, with a 3 s deadline."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, ModelConfig, User
from tests.servers import WorkerSocket, session_cookie
from tests.test_api_support import bearer, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

DEADLINE_S = 3.0


# The worker of ``base``.
SIMULATOR_OPTIONS = {"tokens_per_s": 20, "seed": 3}
WORKER_SETTINGS = {"REQUEST_RECEIVE_TIMEOUT_SECONDS": str(DEADLINE_S)}


def _connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    connection = socket.create_connection((host, int(port)), timeout=DEADLINE_S * 4)
    return connection


def _trickle(connection: socket.socket, data: bytes, *, every: float = 0.4) -> float:
    """Send ``data`` a byte at a time (the worker's idle timeout never fires), until the
    worker closes the connection or answers (or for three deadlines); the seconds it took."""
    started = time.monotonic()
    connection.setblocking(False)
    try:
        for byte in data:
            if time.monotonic() - started > DEADLINE_S * 3:
                break  # the worker let it go on: it would for ever
            try:
                connection.send(bytes([byte]))
            except OSError:  # closed by the worker
                break
            time.sleep(every)
            try:
                if connection.recv(1, socket.MSG_PEEK):
                    break  # an answer came
            except BlockingIOError:
                continue
            except OSError:
                break
    finally:
        connection.settimeout(DEADLINE_S * 4)
    return time.monotonic() - started


def _answer(connection: socket.socket) -> tuple[bytes, bytes]:
    """The whole answer, read until the worker closes the connection: (head, body)."""
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return head, body


def test_headers_sent_a_byte_at_a_time_to_the_api_get_a_408_in_its_envelope(base: str) -> None:
    connection = _connect(base)
    connection.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    took = _trickle(connection, b"X-Slow: " + b"a" * 200 + b"\r\n\r\n")
    head, body = _answer(connection)
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), head
    assert b"connection: close" in head.lower()
    error = json.loads(body)["error"]
    assert error["type"] == "invalid_request_error"
    assert "3 s" in error["message"]
    assert DEADLINE_S - 0.5 < took < DEADLINE_S + 2


def test_a_body_sent_a_byte_at_a_time_gets_a_408(base: str, alice: User) -> None:
    connection = _connect(base)
    body = json.dumps({"model": "deepseek-chat", "messages": []}).encode() + b" " * 500
    connection.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"Authorization: Bearer {make_key(alice)}\r\n".encode()
        + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    )
    took = _trickle(connection, body)
    head, answer = _answer(connection)
    assert head.startswith(b"HTTP/1.1 408 "), head
    assert json.loads(answer)["error"]["type"] == "invalid_request_error"
    assert took < DEADLINE_S + 2


def test_the_sites_pages_get_a_plain_408(base: str) -> None:
    connection = _connect(base)
    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    _trickle(connection, b"X-Slow: " + b"a" * 200 + b"\r\n\r\n")
    head, body = _answer(connection)
    assert head.startswith(b"HTTP/1.1 408 "), head
    assert b"content-type: text/plain" in head.lower()
    assert body == b"The request took too long to be received."


def test_a_kept_alive_connection_waits_for_its_next_request_as_before(base: str) -> None:
    connection = _connect(base)
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    for _ in range(2):
        connection.sendall(request)
        assert connection.recv(65536).startswith(b"HTTP/1.1 200 ")
        time.sleep(DEADLINE_S + 1)  # idle between requests: Twisted's 60 s applies
    connection.close()


def test_a_stream_longer_than_the_deadline_is_not_cut(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    words = " ".join(f"w{i}" for i in range(100))  # 5 s at 20 tokens a second
    started = time.monotonic()
    with httpx.stream(
        "POST",
        base + "/v1/chat/completions",
        headers=bearer(make_key(alice)),
        json={
            "model": "deepseek-chat",
            "messages": [{"role": "user", "content": f"[[sim: say={words}]]"}],
            "stream": True,
        },
        timeout=30,
    ) as response:
        assert response.status_code == 200
        lines = list(response.iter_lines())
    assert time.monotonic() - started > DEADLINE_S
    assert [line for line in lines if line][-1] == "data: [DONE]"


async def test_a_websocket_outlives_the_deadline(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    conversation = await Conversation.objects.acreate(owner=alice, model=chat_model, title="t")
    cookie = await sync_to_async(session_cookie)(alice)
    ws = await WorkerSocket.open(base, conversation.id, cookie)
    await asyncio.sleep(DEADLINE_S + 1)
    await ws.send({"type": "ping"})
    assert await ws.receive() == {"type": "pong"}
    await ws.close()
