"""The API as HTTP clients other than the SDKs speak to it, over raw sockets: ``Expect:
100-continue`` is answered at once (curl waits a second for it otherwise), a chunked body is
read, HTTP/1.0 clients get answers that end with the connection, and calls pipelined on one
kept-alive connection are answered in order. A client that stalls gets nothing until it sends
the rest (Twisted drops it after 60 s of silence, before any of the app runs)."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import pytest

from conversations.models import ModelConfig, User
from tests.test_api_support import make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def key(alice: User, chat_model: ModelConfig) -> str:
    return make_key(alice)


def body(stream: bool = False) -> bytes:
    messages = [{"role": "user", "content": "[[sim: say=ok]]"}]
    return json.dumps({"model": "deepseek-chat", "messages": messages, "stream": stream}).encode()


def connect(base: str) -> socket.socket:
    parts = urlsplit(base)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def head(key: str, *lines: str, version: str = "HTTP/1.1") -> bytes:
    return (
        f"POST /v1/chat/completions {version}\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        + "".join(f"{line}\r\n" for line in lines)
        + "\r\n"
    ).encode()


def read_all(connection: socket.socket) -> bytes:
    answer = b""
    try:
        while chunk := connection.recv(65536):
            answer += chunk
    except TimeoutError:
        raise AssertionError(answer) from None
    return answer


def test_expect_100_continue_is_answered_at_once(base: str, key: str) -> None:
    payload = body()
    with connect(base) as connection:
        asked = time.monotonic()
        connection.sendall(
            head(
                key, f"Content-Length: {len(payload)}", "Expect: 100-continue", "Connection: close"
            )
        )
        assert connection.recv(64) == b"HTTP/1.1 100 Continue\r\n\r\n"
        assert time.monotonic() - asked < 0.5
        connection.sendall(payload)
        answer = read_all(connection)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert b'"content":"ok"' in answer


def test_a_chunked_body_is_read(base: str, key: str) -> None:
    payload = body()
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(payload[i : i + 7]), payload[i : i + 7])
        for i in range(0, len(payload), 7)
    )
    with connect(base) as connection:
        connection.sendall(
            head(key, "Transfer-Encoding: chunked", "Connection: close") + chunks + b"0\r\n\r\n"
        )
        answer = read_all(connection)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert b'"content":"ok"' in answer


@pytest.mark.parametrize("stream", [False, True])
def test_an_http_1_0_client_gets_an_answer_that_ends_with_the_connection(
    base: str, key: str, stream: bool
) -> None:
    payload = body(stream)
    with connect(base) as connection:
        connection.sendall(
            head(key, f"Content-Length: {len(payload)}", version="HTTP/1.0") + payload
        )
        answer = read_all(connection)  # the worker closes it
    assert answer.startswith(b"HTTP/1.0 200 "), answer[:200]
    assert b"transfer-encoding" not in answer.lower()
    assert answer.endswith(b"data: [DONE]\n\n" if stream else b"}")


def test_pipelined_calls_are_answered_in_order(base: str, key: str) -> None:
    payload = body()
    call = head(key, f"Content-Length: {len(payload)}") + payload
    models = (
        f"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with connect(base) as connection:
        connection.sendall(call + call + models)
        answer = read_all(connection)
    assert answer.count(b"HTTP/1.1 200 ") == 3, answer[:500]
    first, second, last = (
        answer.index(b'"object":"chat.completion"'),
        answer.rindex(b'"object":"chat.completion"'),
        answer.index(b'"object":"list"'),
    )
    assert first < second < last


def test_a_client_that_stalls_mid_body_is_not_answered(base: str, key: str) -> None:
    payload = body()
    with connect(base) as connection:
        connection.sendall(head(key, f"Content-Length: {len(payload)}") + payload[:10])
        connection.settimeout(2)
        with pytest.raises(TimeoutError):
            connection.recv(64)
        # The rest, late, is still taken.
        connection.settimeout(10)
        connection.sendall(payload[10:])
        assert connection.recv(64).startswith(b"HTTP/1.1 200 ")
