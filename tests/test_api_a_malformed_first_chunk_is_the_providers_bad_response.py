"""A stream whose first chunk is not shaped as the reference's (its ``delta`` a string) is the
provider's bad response, not a bug of ours: retried as any unreadable response is, then said in
DeepSeek's envelope with a 502 (``upstream_bad_response``), and once the 200 went out (the
first event came after the keep-alive) as the stream's error event, with no ``[DONE]``. The call
is settled as failed, nothing of it logged as a crash (no traceback), nothing of our keys
logged; while its settlement waits out a database outage the connection is kept with
keep-alives.

Before, the stream assembler read that delta as an object: an ``AttributeError`` that the API
answered as its own bug (500 ``internal_error``, a traceback in the log) and the chat as a
reply failed on our side. The chunk comes from a raw upstream (``tests/test_upstream_support.py``)
on a real socket: the simulator only sends well-formed chunks."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

import httpx
import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests import servers
from tests.servers import daphne_worker
from tests.test_a_call_ending_during_a_database_outage_is_charged_the_providers_usage import (
    Outage,
)
from tests.test_api_an_answer_settled_during_an_outage_keeps_its_connection import (
    _assert_never_silent,
    _call_in_background,
    _through_an_outage,
)
from tests.test_api_support import assert_envelope, bearer, make_key, sse_events
from tests.test_upstream_support import API_KEY, Connection, Handler, RawServer, chunk, sse

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

#: A first event whose delta is a string, not an object.
MALFORMED = sse({**chunk(), "choices": [{"index": 0, "delta": "Hello", "finish_reason": None}]})
#: Past the API's wait for the first event (5 s): the 200 and a keep-alive go out first.
LATE_S = 6.0
#: Within that wait, late enough for a database outage to begin first.
SLOW_S = 2.0
WORKER_NAME = f"worker-{uuid.uuid4().hex[:8]}"


async def _malformed_now(connection: Connection) -> None:
    await connection.head()
    await connection.write(MALFORMED, pieces=None)
    await connection.end()


async def _by_marker(connection: Connection) -> None:
    """The malformed stream at once, after ``[late]`` 6 s or after ``[slow]`` 2 s; any other
    request (the chat's model list) a 404."""
    if connection.request.method != "POST":
        await connection.reply(404, b"{}")
        return
    body = connection.request.body.decode()
    await connection.head()
    await asyncio.sleep(LATE_S if "[late]" in body else SLOW_S if "[slow]" in body else 0)
    await connection.write(MALFORMED, pieces=None)
    await connection.end()


@contextmanager
def _raw_upstream(handlers: Sequence[Handler]) -> Iterator[str]:
    """A RawServer on its own event loop in a thread, for a worker in another process."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = RawServer(handlers)
    asyncio.run_coroutine_threadsafe(server.__aenter__(), loop).result(10)
    try:
        yield server.base_url
    finally:
        asyncio.run_coroutine_threadsafe(server.__aexit__(None, None, None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextmanager
def _stderr_to(sink: IO[bytes]) -> Iterator[None]:
    """fd 2 redirected to ``sink`` while a worker starts: the worker keeps writing there."""
    saved = os.dup(2)
    os.dup2(sink.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@pytest.fixture(scope="module")
def worker(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """A worker against the raw upstream, logging at INFO into a file; its database sessions
    are named (for ``Outage``)."""
    log = tmp_path_factory.mktemp("worker") / "stderr.log"
    url = f"{servers.test_database_url()}?application_name={WORKER_NAME}"
    with ExitStack() as stack:
        upstream = stack.enter_context(_raw_upstream([_by_marker]))
        with log.open("ab") as sink, _stderr_to(sink):
            base = stack.enter_context(
                daphne_worker(upstream, API_KEY, DATABASE_URL=url, LOG_LEVEL="INFO")
            )
        yield base, log


@pytest.fixture
def outage() -> Iterator[Outage]:
    outage = Outage(WORKER_NAME)
    try:
        yield outage
    finally:
        outage.end()
        outage.admin.close()


def _stream(base: str, secret: str, content: str) -> httpx.Response:
    body = {
        "model": "deepseek-chat",
        "stream": True,
        "messages": [{"role": "user", "content": content}],
    }
    return httpx.post(base + "/v1/chat/completions", headers=bearer(secret), json=body, timeout=40)


def _request_line(log: Path, request_id: str) -> str:
    """The worker's request log line for the request (written just after its last byte)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if f"req={request_id} " in line and "chatsite.request" in line:
                return line
        time.sleep(0.1)
    raise AssertionError(f"no request log line for {request_id}")


def _assert_logged_once(log: Path, request_id: str, secret: str) -> None:
    _request_line(log, request_id)
    text = log.read_text()
    # Said as the provider's fault (the upstream client's own line), never as a crash of ours.
    assert "attempt(s): upstream_bad_response (a stream event was not shaped as a" in text
    assert "API stream failed" not in text and "API request failed" not in text
    for part in (secret, API_KEY, API_KEY[-4:], "Bearer", "uthorization"):
        assert part not in text, part


def _assert_settled_as_failed(alice: User) -> None:
    record = UsageRecord.objects.get(user=alice)
    assert (record.state, record.outcome) == ("settled", "failed")
    assert record.reserved_tokens == 0
    # The provider took the call (its 200 came): the prompt as admitted is charged.
    assert record.estimated and record.prompt_tokens > 0 and record.completion_tokens == 0


def test_a_malformed_first_chunk_is_a_502_in_the_envelope(
    worker: tuple[str, Path], alice: User, chat_model: ModelConfig
) -> None:
    base, log = worker
    secret = make_key(alice)
    response = _stream(base, secret, "Hello")
    error = assert_envelope(response, 502, "api_error")
    assert error == {
        "message": "The model provider sent a response that could not be read.",
        "type": "api_error",
        "param": None,
        "code": "upstream_bad_response",
    }
    assert "Hello" not in response.text
    _assert_logged_once(log, response.headers["x-request-id"], secret)
    _assert_settled_as_failed(alice)


def test_a_malformed_first_chunk_after_the_keepalive_ends_the_stream_with_an_error_event(
    worker: tuple[str, Path], alice: User, chat_model: ModelConfig
) -> None:
    base, log = worker
    secret = make_key(alice)
    response = _stream(base, secret, "Hello [late]")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    data, comments = sse_events(response.text)
    assert comments and set(comments) == {": keep-alive"}
    assert "[DONE]" not in data
    assert json.loads(data[-1]) == {
        "error": {
            "message": "The model provider sent a response that could not be read.",
            "type": "api_error",
            "param": None,
            "code": "upstream_bad_response",
        }
    }
    request_id = response.headers["x-request-id"]
    _assert_logged_once(log, request_id, secret)
    assert _request_line(log, request_id).endswith(" error=upstream_bad_response")
    _assert_settled_as_failed(alice)


def test_a_malformed_first_chunk_keeps_the_connection_while_its_settlement_waits(
    worker: tuple[str, Path], alice: User, chat_model: ModelConfig, outage: Outage
) -> None:
    base, log = worker
    secret = make_key(alice)
    body = {"messages": [{"role": "user", "content": "Hello [slow]"}], "stream": True}
    answer = _call_in_background(base, secret, body)
    _through_an_outage(outage, alice, answer)

    text = _assert_never_silent(answer).decode()
    assert text.startswith(": keep-alive\n\n")
    data, _ = sse_events(text)
    assert "[DONE]" not in data
    [event] = [json.loads(item) for item in data]
    assert event["error"]["code"] == "upstream_bad_response"
    _assert_settled_as_failed(alice)
    [request_id] = {
        line.split(" req=")[1].split(" ")[0]
        for line in log.read_text().splitlines()
        if " user=" + str(alice.pk) + " " in line and "chatsite.request" in line
    }
    _assert_logged_once(log, request_id, secret)
