"""A call whose answer arrives while PostgreSQL cannot be reached is answered at once, and
settled when the database is back (``pgpool.outlasting_outage``, for as long as it lasts). A
call refused by the provider, whose refusal is settled before it is told, keeps its client
hearing from us while the settlement waits the outage out: a client with a read timeout of a
few seconds keeps its connection.

Before, a stream the upstream refused at once settled before answering its status: nothing
was sent until the database was back, and a client's read timeout fired first. (A stream
whose 200 is out already keeps its ``: keep-alive`` comments while it settles.)

A real daphne worker, a real simulator upstream, the test database made to refuse
connections, the worker's sessions ended (``Outage``), for longer than a client's read
timeout."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conversations.api_asgi import KEEPALIVE_INTERVAL_S
from conversations.models import ModelConfig, UsageRecord, User
from simulator.testing import running_simulator
from tests import servers
from tests.servers import daphne_worker
from tests.support import SIM_KEY, eventually
from tests.test_a_call_ending_during_a_database_outage_is_charged_the_providers_usage import (
    Outage,
)
from tests.test_api_support import bearer, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

ANSWER = " ".join(f"word{i}" for i in range(40))  # 2 s at 20 tokens a second
OUTAGE_S = 20.0
# A client's read timeout: longer than the keep-alive interval, much shorter than the outage.
READ_TIMEOUT_S = KEEPALIVE_INTERVAL_S + 3


@pytest.fixture
def worker_name() -> str:
    return f"worker-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def outage(worker_name: str) -> Iterator[Outage]:
    outage = Outage(worker_name)
    try:
        yield outage
    finally:
        outage.end()
        outage.admin.close()


@pytest.fixture
def worker(worker_name: str, chat_model: ModelConfig) -> Iterator[str]:
    url = f"{servers.test_database_url()}?application_name={worker_name}"
    with (
        running_simulator(api_key=SIM_KEY, tokens_per_s=20, seed=1) as upstream,
        daphne_worker(upstream, SIM_KEY, DATABASE_URL=url) as base,
    ):
        yield base


def _call_in_background(base: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a chat completion on a thread, as a client with a short read timeout; the dict
    gets the status, each piece of the body with when it came, or the error."""
    answer: dict[str, Any] = {"pieces": []}

    def post() -> None:
        payload = {"model": "deepseek-chat", **body}
        timeout = httpx.Timeout(READ_TIMEOUT_S, connect=5)
        started = time.monotonic()
        try:
            with httpx.stream(
                "POST",
                f"{base}/v1/chat/completions",
                headers=bearer(key),
                json=payload,
                timeout=timeout,
            ) as response:
                answer["status"] = response.status_code
                answer["status_after"] = time.monotonic() - started
                for piece in response.iter_raw():
                    answer["pieces"].append((time.monotonic() - started, piece))
        except httpx.HTTPError as error:
            answer["error"] = error

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    answer["thread"] = thread
    return answer


def _record(user: User) -> UsageRecord:
    return UsageRecord.objects.get(user=user, purpose=UsageRecord.Purpose.API)


def _through_an_outage(outage: Outage, user: User, answer: dict[str, Any]) -> None:
    # Admitted first (a reserved row), then the outage, before the upstream answers.
    eventually(  # 30 s: a loaded machine's admission; begun before it, the call is refused
        lambda: UsageRecord.objects.get(user=user, purpose=UsageRecord.Purpose.API), within=30
    )
    outage.begin()
    time.sleep(OUTAGE_S)
    outage.end()
    answer["thread"].join(60)


def _assert_never_silent(answer: dict[str, Any]) -> bytes:
    assert "error" not in answer, f"the client gave up: {answer.get('error')!r}"
    assert answer["status"] == 200
    times = [answer["status_after"], *(at for at, _ in answer["pieces"])]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert answer["status_after"] < OUTAGE_S / 2, "the status waited for the database"
    assert max(gaps) <= KEEPALIVE_INTERVAL_S + 2, gaps
    assert times[-1] > OUTAGE_S, "answered before the outage ended"
    return b"".join(piece for _, piece in answer["pieces"])


def test_a_whole_answer_goes_out_during_the_outage_and_is_settled_after_it(
    alice: User, worker: str, outage: Outage
) -> None:
    answer = _call_in_background(
        worker,
        make_key(alice),
        {"messages": [{"role": "user", "content": f"[[sim: say={ANSWER}]]"}]},
    )
    _through_an_outage(outage, alice, answer)

    # The answer did not wait for the database: its settlement comes after it.
    assert "error" not in answer, f"the client gave up: {answer.get('error')!r}"
    assert answer["status"] == 200
    assert answer["pieces"][-1][0] < OUTAGE_S / 2, "the answer waited for the database"
    completion = json.loads(b"".join(piece for _, piece in answer["pieces"]))
    assert completion["choices"][0]["message"]["content"] == ANSWER
    record = eventually(
        lambda: UsageRecord.objects.get(
            user=alice, purpose=UsageRecord.Purpose.API, state=UsageRecord.State.SETTLED
        ),
        within=20,  # its tries wait up to 4 s apart (pgpool.OUTAGE_RETRY_WAITS)
    )
    assert record.outcome == "complete"
    assert record.completion_tokens == completion["usage"]["completion_tokens"] > 0


def test_a_stream_refused_at_once_keeps_its_connection_while_its_settlement_waits(
    alice: User, worker: str, outage: Outage
) -> None:
    # The provider refuses every try (a 429 with Retry-After: 1; two retries): refused ~2 s in,
    # within the first wait, with the database gone.
    content = "[[sim: fault=429 retry_after=1]] Hi"
    answer = _call_in_background(
        worker,
        make_key(alice),
        {"messages": [{"role": "user", "content": content}], "stream": True},
    )
    _through_an_outage(outage, alice, answer)

    body = _assert_never_silent(answer).decode()
    assert body.startswith(": keep-alive\n\n")
    events = [line[6:] for line in body.splitlines() if line.startswith("data: ")]
    assert "[DONE]" not in events
    [error] = [json.loads(event)["error"] for event in events]
    assert error["type"] == "rate_limit_error"
    record = _record(alice)
    assert record.state != UsageRecord.State.RESERVED, "left reserved, for the reaper"
    assert record.reserved_tokens == 0
