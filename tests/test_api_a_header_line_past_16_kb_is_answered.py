"""A request with one header line longer than 16 kB is answered 400, not dropped in silence.

Headers past 16 kB in all were refused with a 400 in the API's envelope, but a single header
line past 16 kB (a long token, a proxy's large identity header) never reached that check:
Twisted's line reader closed the connection without a word, and a client could only report
"server disconnected without sending a response" (the OpenAI SDKs even retried it, twice).
Raw sockets: HTTP clients send these as given.
"""

from __future__ import annotations

import contextlib
import json
import socket
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

LONG_LINE = b"X-Long: " + b"a" * 20_000 + b"\r\n"


def exchange(base: str, request: bytes) -> bytes:
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := connection.recv(65536):
                answer += chunk
        return answer


def test_a_header_line_past_16_kb_on_the_api_is_a_400_in_the_envelope(base: str) -> None:
    request = (
        b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer sk-team-unknown\r\n" + LONG_LINE + b"\r\n"
    )
    answer = exchange(base, request)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert b"content-type: application/json" in head.lower()
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "16 kB" in error["message"]


def test_a_header_line_past_16_kb_on_the_sites_pages_is_a_plain_400(base: str) -> None:
    answer = exchange(base, b"GET /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n" + LONG_LINE)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b"application/json" not in answer
