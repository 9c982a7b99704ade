"""An upstream failure that comes after the keep-alive went out (the 200 is sent) still ends
the stream with the error event, is settled as failed (nothing charged for a refusal the
provider does not bill), and the request log line says what ended the stream."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

import httpx
import pytest

from conversations.models import ModelConfig, UsageRecord, User
from simulator.testing import running_simulator
from tests.servers import daphne_worker
from tests.support import SIM_KEY
from tests.test_api_support import bearer, make_key, sse_events

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


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
    """A worker logging at INFO into a file: the request log line is checked too."""
    log = tmp_path_factory.mktemp("worker") / "stderr.log"
    with ExitStack() as stack:
        upstream = stack.enter_context(
            running_simulator(
                api_key=SIM_KEY, tokens_per_s=0, seed=7, queue_timeout_s=6, keepalive_interval_s=0.5
            )
        )
        with log.open("ab") as sink, _stderr_to(sink):
            base = stack.enter_context(daphne_worker(upstream, SIM_KEY, LOG_LEVEL="INFO"))
        yield base, log


def _request_line(log: Path, request_id: str) -> str:
    """The worker's log line for the request (written just after its last byte)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if f"req={request_id} " in line and "chatsite.request" in line:
                return line
        time.sleep(0.1)
    raise AssertionError(f"no request log line for {request_id}")


def _stream(base: str, alice: User, content: str) -> httpx.Response:
    body = {
        "model": "deepseek-chat",
        "stream": True,
        "messages": [{"role": "user", "content": content}],
    }
    # A client that hung forever would fail here on the read timeout.
    return httpx.post(
        base + "/v1/chat/completions", headers=bearer(make_key(alice)), json=body, timeout=40
    )


def _error_event(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200
    data, comments = sse_events(response.text)
    assert comments == [": keep-alive"]  # the 200 went out before the failure was known
    assert data and data[-1] != "[DONE]" and "[DONE]" not in data
    error: dict[str, str] = json.loads(data[-1])["error"]
    return error


def test_a_refusal_after_the_keepalive_ends_the_stream_and_is_not_charged(
    worker: tuple[str, Path], alice: User, chat_model: ModelConfig
) -> None:
    base, log = worker
    # An attempt the upstream drops after 6 s in its queue (and does not bill): past the 5 s
    # wait, and not retried (a retry as long would end past the API's retry budget).
    response = _stream(base, alice, "hi [[sim: queue=7]]")
    error = _error_event(response)
    assert error["code"] == "upstream_queue_timeout"
    record = UsageRecord.objects.get(user=alice)
    assert (record.state, record.outcome) == ("settled", "failed")
    assert record.total_tokens == 0 and record.cost == 0 and record.reserved_tokens == 0
    line = _request_line(log, response.headers["x-request-id"])
    assert " POST /v1/chat/completions 200 " in line and line.endswith(
        " error=upstream_queue_timeout"
    )


def test_a_billed_failure_after_the_keepalive_ends_the_stream_as_failed(
    worker: tuple[str, Path], alice: User, chat_model: ModelConfig
) -> None:
    base, log = worker
    # An attempt cut before its first token, 6 s in: past the 5 s wait, and not retried.
    response = _stream(base, alice, "hi [[sim: first_token_latency=6 drop_after=0]]")
    error = _error_event(response)
    assert error["code"] == "response_truncated"
    record = UsageRecord.objects.get(user=alice)
    assert (record.state, record.outcome) == ("settled", "failed")
    assert record.completion_tokens == 0 and record.reserved_tokens == 0
    line = _request_line(log, response.headers["x-request-id"])
    assert " POST /v1/chat/completions 200 " in line and line.endswith(" error=response_truncated")
