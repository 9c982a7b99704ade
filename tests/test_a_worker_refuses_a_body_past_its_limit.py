"""A daphne worker answers a request whose body goes past the largest it takes with a 413 at
once, and closes the connection. Twisted read every body whole before the app saw it, spooling
it to a temporary file with no limit: anyone, without an account, could fill the worker's disk
with one POST (it went on reading while the client kept sending)."""

from __future__ import annotations

import contextlib
import socket
from urllib.parse import urlsplit

import pytest

from chatsite.twisted_requests import MAX_BODY_BYTES
from simulator.testing import running_simulator
from tests.servers import daphne_worker
from tests.support import SIM_KEY

pytestmark = pytest.mark.django_db(transaction=True)


def answer_to(base: str, head: bytes, body: bytes) -> bytes:
    """What the worker answers once ``head`` and ``body`` are sent (more is still to come)."""
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        connection.sendall(head)
        # Refused and closed while it was sending: the answer is still there to read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(body)
        connection.settimeout(5)
        try:
            return connection.recv(4096)
        except TimeoutError:
            return b"(no answer: the worker is still reading)"


@pytest.mark.parametrize("path", ["/accounts/login/", "/v1/chat/completions"])
def test_a_body_past_the_limit_is_refused_before_it_is_read(path: str) -> None:
    with running_simulator(api_key=SIM_KEY) as upstream, daphne_worker(upstream, SIM_KEY) as base:
        declared = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {100 * MAX_BODY_BYTES}\r\n\r\n"
        ).encode()
        answer = answer_to(base, declared, b"x" * 65_536)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]

        chunked = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        chunk = b"x" * 1_048_576
        chunks = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * (MAX_BODY_BYTES // len(chunk) + 1)
        answer = answer_to(base, chunked, chunks)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_a_body_within_the_limit_still_gets_the_app_s_answer() -> None:
    """Past the API's own limit the answer is the API's JSON (the worker holds the API's paths
    to it: tests/test_api_refusals_the_worker_makes_itself_are_in_the_envelope.py)."""
    with running_simulator(api_key=SIM_KEY) as upstream, daphne_worker(upstream, SIM_KEY) as base:
        body = b"x" * (3 * 1024 * 1024)  # past the API's 2 MB
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Authorization: Bearer sk-team-unknown\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        answer = answer_to(base, head, body)
        assert answer.startswith(b"HTTP/1.1 401") or answer.startswith(b"HTTP/1.1 413"), answer
        assert b"application/json" in answer, answer[:300]
