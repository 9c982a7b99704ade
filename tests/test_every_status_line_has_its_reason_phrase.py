"""Every status the API and the site send has its standard reason phrase on the status line.
Twisted writes the line from its own table, which has no 429 (nor 422, 428, 431...): a limit
went out as ``HTTP/1.1 429 Unknown Status``, which proxies and clients log as it is."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from conversations.models import ModelConfig, User
from tests.test_api_support import make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


# The worker of ``base`` lets an anonymous address make one share-link request a minute.
WORKER_SETTINGS = {"ANONYMOUS_LINK_REQUESTS_PER_MINUTE": "1"}


def _status_line(base: str, request: bytes) -> str:
    """The status line the worker answers ``request`` with, read off the socket as sent."""
    address = urlsplit(base)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(request)
        received = b""
        while b"\r\n" not in received:
            chunk = sock.recv(4096)
            assert chunk, f"the connection closed after {received!r}"
            received += chunk
    return received.split(b"\r\n", 1)[0].decode("latin-1")


def _post(path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def test_an_api_limit_reads_429_too_many_requests(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    body = json.dumps(
        {"model": "deepseek-chat", "messages": [{"role": "user", "content": "[[sim: fault=429]]"}]}
    ).encode()
    headers = {"Authorization": f"Bearer {make_key(alice)}", "Content-Type": "application/json"}
    line = _status_line(base, _post("/v1/chat/completions", headers, body))
    assert line == "HTTP/1.1 429 Too Many Requests"


def test_the_sites_statuses_read_their_phrases(base: str) -> None:
    assert _status_line(base, _get("/healthz")) == "HTTP/1.1 200 OK"
    assert _status_line(base, _get("/v1/nowhere")) == "HTTP/1.1 404 Not Found"
    # One share-link request a minute from an address: the next ones are refused (a third in
    # case the first two straddle the minute).
    lines = [_status_line(base, _get(f"/s/guessed-guessed-guessed-{n}/")) for n in range(3)]
    assert "HTTP/1.1 429 Too Many Requests" in lines
    assert "HTTP/1.1 429 Unknown Status" not in lines
