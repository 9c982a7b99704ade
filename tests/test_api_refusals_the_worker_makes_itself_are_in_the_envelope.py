"""What the worker refuses on the API's paths before the API sees the request is in the API's
envelope, and the worker reads no more of a call's body than the API takes (2 MB).

A body between 2 and 10 MB was read whole (spooled to disk) before the API said 413; past
10 MB the worker's own 413 was plain text. A request that is not valid HTTP (a body declared
by both Content-Length and Transfer-Encoding, a malformed chunk) was answered by Twisted with a
bare ``HTTP/1.1 400 Bad Request`` and no body. Raw sockets: HTTP clients refuse to send these.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from urllib.parse import urlsplit

import pytest

from conversations.api_asgi import MAX_BODY_BYTES

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def exchange(base: str, head: bytes, body: bytes = b"", *, wait: float = 0) -> bytes:
    """Send ``head``; after ``wait`` seconds (an Expect: 100-continue client's pause), read
    what came, then send ``body`` and read the rest until the worker closes."""
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        connection.sendall(head)
        early = b""
        if wait:
            connection.settimeout(wait)
            with contextlib.suppress(TimeoutError):
                early = connection.recv(65536)
            connection.settimeout(10)
        # Refused and closed while it was sending: the answer is still there to read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(body)
        answer = early
        with contextlib.suppress(ConnectionResetError):
            while chunk := connection.recv(65536):
                answer += chunk
        return answer


def envelope(answer: bytes, status: int) -> dict[str, object]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} "), answer[:300]
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert headers["content-type"] == "application/json"
    assert headers["access-control-allow-origin"] == "*"
    assert headers["x-request-id"]
    assert int(headers["content-length"]) == len(body)
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    return dict(error)


def post(length: str = "", extra: str = "") -> bytes:
    return (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Authorization: Bearer sk-team-unknown\r\nContent-Type: application/json\r\n"
        "Connection: close\r\n"
        f"{length}{extra}\r\n"
    ).encode()


def test_a_declared_body_past_the_apis_limit_is_refused_before_a_100_continue(
    base: str,
) -> None:
    size = MAX_BODY_BYTES + 1
    head = post(f"Content-Length: {size}\r\n", "Expect: 100-continue\r\n")
    answer = exchange(base, head, b"x" * size, wait=2)
    # The 413 came first: no "100 Continue" invited the client to send 2 MB for nothing.
    error = envelope(answer, 413)
    assert "2 MB" in str(error["message"])


def test_the_rest_of_a_refused_body_is_read_before_the_connection_closes(base: str) -> None:
    # A proxy streaming the body to the worker (nginx does) fails on a connection closed while
    # it sends, and answers its client 502 instead of passing the 413 on.
    size = 3 * 1024 * 1024
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        connection.sendall(post(f"Content-Length: {size}\r\n"))
        time.sleep(0.5)  # the 413 is out, and the worker would have closed
        connection.sendall(b"x" * size)  # no BrokenPipeError / ConnectionResetError
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    assert "2 MB" in str(envelope(answer, 413)["message"])


def test_a_chunked_body_past_the_apis_limit_is_refused_in_the_envelope(base: str) -> None:
    chunk = b"x" * 262_144
    chunks = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * (2 * MAX_BODY_BYTES // len(chunk))
    chunks += b"0\r\n\r\n"
    answer = exchange(base, post("Transfer-Encoding: chunked\r\n"), chunks)
    assert "2 MB" in str(envelope(answer, 413)["message"])


def test_a_body_declared_twice_is_a_400_in_the_envelope(base: str) -> None:
    body = b'{"model": "deepseek-chat"}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    head = post(f"Content-Length: {len(body)}\r\n", "Transfer-Encoding: chunked\r\n")
    error = envelope(exchange(base, head, chunked), 400)
    assert "Content-Length and Transfer-Encoding" in str(error["message"])


def test_a_malformed_chunk_is_a_400_in_the_envelope(base: str) -> None:
    answer = exchange(base, post("Transfer-Encoding: chunked\r\n"), b"zz\r\n{}\r\n0\r\n\r\n")
    assert "not valid HTTP/1.1" in str(envelope(answer, 400)["message"])


def test_the_sites_pages_keep_the_plain_answers(base: str) -> None:
    head = post("Content-Length: 2\r\n", "Transfer-Encoding: chunked\r\n").replace(
        b"/v1/chat/completions", b"/accounts/login/"
    )
    answer = exchange(base, head, b"0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400") and b"application/json" not in answer
