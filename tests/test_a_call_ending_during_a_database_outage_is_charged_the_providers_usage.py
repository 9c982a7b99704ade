"""A call that ends while PostgreSQL cannot be reached is charged what the provider billed: its
settlement waits the outage out (``pgpool.outlasting_outage``), as a reply's final write does.

Before, the API's settlement (streamed or not, history saved or not) and a title's were tried
once: the row stayed reserved until the reaper released it charging only the prompt estimate,
and the completion the provider billed was lost from the ledger.

A real daphne worker, a real simulator upstream, the test database: mid-call, the database
stops taking connections and the worker's sessions are ended (what a restart does), for longer
than the pool waits for a connection; then it is back."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from psycopg import sql

from conversations import pgpool
from conversations.models import Conversation, ModelConfig, UsageRecord, User
from simulator.testing import running_simulator
from tests import servers
from tests.servers import WorkerSocket, daphne_worker, session_cookie, worker_process
from tests.support import SIM_KEY, eventually
from tests.test_api_support import bearer, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(150)]

ANSWER = " ".join(f"word{i}" for i in range(40))  # 2 s at 20 tokens a second
# Longer than the pool waits for a connection (5 s): the first try of the settlement fails.
OUTAGE_S = pgpool.ACQUIRE_TIMEOUT_S + 3


class Outage:
    """The test database refusing connections, and the worker's sessions ended (its Django
    connections, named ``application_name``, and its API pool's): a restart, as the worker
    sees it. Only this test's database is touched."""

    def __init__(self, application_name: str) -> None:
        self.database = connection.settings_dict["NAME"]
        self.application_name = application_name
        self.admin = psycopg.connect(
            pgpool.conninfo(), dbname="postgres", application_name="outage", autocommit=True
        )

    def begin(self) -> None:
        self._allow(False)
        self.admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND application_name IN (%s, 'chat-api')",
            [self.database, self.application_name],
        )

    def end(self) -> None:
        self._allow(True)

    def _allow(self, allowed: bool) -> None:
        self.admin.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                sql.Identifier(self.database), sql.SQL("true" if allowed else "false")
            )
        )


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
    """A worker whose Django sessions are named ``worker_name`` (the registry seeded)."""
    url = f"{servers.test_database_url()}?application_name={worker_name}"
    with (
        running_simulator(api_key=SIM_KEY, tokens_per_s=20, seed=1) as upstream,
        daphne_worker(upstream, SIM_KEY, DATABASE_URL=url) as base,
    ):
        yield base


def _call_in_background(base: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a chat completion on a thread; the dict gets its response once it has ended."""
    answer: dict[str, Any] = {}

    def post() -> None:
        payload = {"model": "deepseek-chat", **body}
        try:
            answer["response"] = httpx.post(
                f"{base}/v1/chat/completions", headers=bearer(key), json=payload, timeout=90
            )
        except httpx.HTTPError as error:
            answer["error"] = error

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    answer["thread"] = thread
    return answer


def _ended(answer: dict[str, Any]) -> httpx.Response:
    answer["thread"].join(60)
    assert "error" not in answer, answer.get("error")
    response: httpx.Response = answer["response"]
    return response


def _usage_of_stream(body: str) -> dict[str, Any]:
    chunks = [
        json.loads(line[6:])
        for line in body.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]
    usage: dict[str, Any] = next(c["usage"] for c in reversed(chunks) if c.get("usage"))
    return usage


def _record_of(user: User) -> UsageRecord:
    """The call's ledger row once settled (an answer is settled after it has gone out)."""

    def settled() -> UsageRecord:
        record = UsageRecord.objects.get(user=user, purpose=UsageRecord.Purpose.API)
        assert record.state == UsageRecord.State.SETTLED, "left reserved, for the reaper"
        return record

    return eventually(settled)


def _assert_charged(record: UsageRecord, usage: dict[str, Any]) -> None:
    assert record.state == UsageRecord.State.SETTLED, "left reserved, for the reaper"
    assert record.outcome == "complete" and not record.estimated
    assert record.completion_tokens == usage["completion_tokens"] > 0
    assert record.prompt_tokens == usage["prompt_tokens"]
    assert record.reserved_tokens == 0


def _admitted(user: User) -> None:
    """Until the user's API call has its reserved ledger row: admitted, and on its way to the
    provider (its answer then takes ~2 s). Waited for rather than slept: on a loaded machine
    the admission can take longer than a fixed second, and an outage begun before it refuses
    the call instead of testing its settlement."""
    eventually(
        lambda: UsageRecord.objects.get(user=user, purpose=UsageRecord.Purpose.API), within=30
    )


def _through_an_outage(outage: Outage, user: User) -> None:
    _admitted(user)
    outage.begin()
    time.sleep(OUTAGE_S)  # the call ends ~2 s in; its settlement's first try fails
    outage.end()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_an_api_call_ending_during_an_outage_is_charged_the_providers_usage(
    alice: User, worker: str, outage: Outage, stream: bool
) -> None:
    key = make_key(alice)
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": f"[[sim: say={ANSWER}]]"}],
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    answer = _call_in_background(worker, key, body)
    _through_an_outage(outage, alice)

    response = _ended(answer)
    assert response.status_code == 200, response.text
    text = response.text
    usage = _usage_of_stream(text) if stream else json.loads(text)["usage"]
    if stream:
        assert text.rstrip().endswith("data: [DONE]")
    _assert_charged(_record_of(alice), usage)


def test_a_call_saved_to_history_during_an_outage_is_charged_and_saved_once(
    alice: User, worker: str, outage: Outage
) -> None:
    key = make_key(alice, save_history=True)
    answer = _call_in_background(
        worker, key, {"messages": [{"role": "user", "content": f"[[sim: say={ANSWER}]]"}]}
    )
    _through_an_outage(outage, alice)

    response = _ended(answer)
    assert response.status_code == 200, response.text
    _assert_charged(_record_of(alice), response.json()["usage"])
    saved = eventually(lambda: Conversation.objects.get(owner=alice))  # saved once settled
    assert saved.messages.filter(role="assistant").get().content == ANSWER


def test_a_worker_told_to_stop_gives_a_waiting_settlement_its_grace_period(
    alice: User, worker: str, outage: Outage
) -> None:
    """SIGTERM during the outage: the worker does not exit while a settlement waits for the
    database, for as long as its grace period (20 s) lasts; the database is back within it.
    (Its process is this test's child: exited, it is a zombie until it is waited for.)"""
    key = make_key(alice)
    _call_in_background(
        worker, key, {"messages": [{"role": "user", "content": f"[[sim: say={ANSWER}]]"}]}
    )
    _admitted(alice)
    outage.begin()
    time.sleep(OUTAGE_S)  # the call has ended; its settlement waits
    server = worker_process(worker)
    server.send_signal(signal.SIGTERM)
    time.sleep(2)
    assert server.status() != psutil.STATUS_ZOMBIE, "exited with a settlement waiting"
    outage.end()
    server.wait(30)

    record = _record_of(alice)
    assert record.state == UsageRecord.State.SETTLED, "left reserved, for the reaper"
    assert record.outcome == "complete" and not record.estimated
    assert record.completion_tokens > 0


async def test_a_title_call_ending_during_an_outage_is_charged_the_providers_usage(
    alice: User, chat_model: ModelConfig, worker: str, outage: Outage
) -> None:
    untitled = await Conversation.objects.acreate(owner=alice, model=chat_model, title="")
    cookie = await sync_to_async(session_cookie)(alice)
    socket = await WorkerSocket.open(worker, untitled.id, cookie)
    # The title call is asked the first message too: the simulator says the same words.
    await socket.send(
        {"type": "message.send", "client_id": "a", "content": f"[[sim: say={ANSWER}]]"}
    )
    end = await socket.until(("reply.completed", "reply.failed"))
    assert end["type"] == "reply.completed", end
    title_call = UsageRecord.objects.filter(
        conversation_id=untitled.id, purpose=UsageRecord.Purpose.TITLE
    )
    for _ in range(400):  # admitted at once after the reply's final write (20 s: a loaded machine)
        if await title_call.aexists():
            break
        await asyncio.sleep(0.05)
    record = await title_call.aget()
    assert record.state == UsageRecord.State.RESERVED, "the title call ended already"

    await asyncio.to_thread(outage.begin)
    await asyncio.sleep(OUTAGE_S)
    await asyncio.to_thread(outage.end)

    for _ in range(300):  # the settlement's next try, within a few seconds
        record = await title_call.aget()
        if record.state != UsageRecord.State.RESERVED:
            break
        await asyncio.sleep(0.1)
    assert record.state == UsageRecord.State.SETTLED, "left reserved, for the reaper"
    assert record.outcome == "complete" and not record.estimated
    assert record.completion_tokens > 0 and record.reserved_tokens == 0
    update = await socket.until("conversation.updated")
    assert update["title"]
    await socket.close()
