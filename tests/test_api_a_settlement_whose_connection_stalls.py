"""An API call's settlement whose connection to PostgreSQL stalls (no answer, no error, the
socket left open) is given up after ``DATABASE_STALL_TIMEOUT_SECONDS`` and made on a new
connection: the call is charged once. Before, the settlement waited for ever (and, when the
response waited for the settlement, the call with it); its reservation was never given back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from django.db import connection

from conversations.models import ModelConfig, UsageAccount, UsageRecord, User, UserLimits
from simulator.testing import running_simulator
from tests import servers
from tests.pgproxy import PgProxy, pg_proxy
from tests.servers import daphne_worker
from tests.support import SIM_KEY, eventually
from tests.test_api_support import all_settled, bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

ONE_SETTLEMENT = "usage_settle_own("  # the call's only statement that settles


@pytest.fixture
def proxied_worker(chat_model: ModelConfig) -> Iterator[tuple[str, PgProxy]]:
    """A worker whose every database connection goes through a proxy, and which gives up on a
    statement after one second without an answer."""
    db = connection.settings_dict
    with (
        pg_proxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)) as proxy,
        running_simulator(api_key=SIM_KEY, tokens_per_s=0, seed=7) as upstream,
    ):
        through_proxy = servers.test_database_url(through_port=proxy.port)
        with daphne_worker(
            upstream, SIM_KEY, DATABASE_URL=through_proxy, DATABASE_STALL_TIMEOUT_SECONDS="1"
        ) as base:
            try:
                yield base, proxy
            finally:
                proxy.restore()


@pytest.mark.parametrize("stream", [False, True])
def test_a_call_whose_settlement_stalls_is_charged_once(
    proxied_worker: tuple[str, PgProxy], alice: User, stream: bool
) -> None:
    base, proxy = proxied_worker
    key = make_key(alice)
    stalled = proxy.stall_once(ONE_SETTLEMENT)
    # The stalled connection is never restored meanwhile: only a new one gets through.
    response = chat(base, bearer(key), stream=stream)
    assert response.status_code == 200, response.text
    # Settled once the answer has gone out, after the stall's timeout.
    record = eventually(
        lambda: UsageRecord.objects.get(
            user=alice, purpose=UsageRecord.Purpose.API, state=UsageRecord.State.SETTLED
        ),
        within=30,
    )
    assert stalled.is_set(), "the settlement's connection did not stall"
    assert record.outcome == "complete" and not record.estimated
    assert record.completion_tokens > 0 and record.reserved_tokens == 0
    account = UsageAccount.objects.get(user=alice)
    assert (account.day_used, account.month_used) == (record.total_tokens,) * 2
    assert account.streams == 0


def test_a_balance_read_while_an_answers_settlement_stalls_waits_for_it(
    proxied_worker: tuple[str, PgProxy], alice: User
) -> None:
    # The answer goes out, then its settlement stalls (a second, then a new connection): a
    # balance read meanwhile waits for it, and counts what the call used rather than the
    # worst case still reserved for it.
    base, proxy = proxied_worker
    UserLimits.objects.create(user=alice, tokens_per_day=100_000)
    key = make_key(alice)
    stalled = proxy.stall_once(ONE_SETTLEMENT)
    response = chat(base, bearer(key), max_tokens=4000)
    assert response.status_code == 200, response.text
    used = response.json()["usage"]["total_tokens"]
    balance = httpx.get(base + "/user/balance", headers=bearer(key), timeout=30)
    assert stalled.is_set(), "the settlement's connection did not stall"
    assert balance.json()["balance_infos"][0]["total_balance"] == f"{100_000 - used}.00"


def test_a_call_sent_on_the_heels_of_an_answer_whose_settlement_stalls_is_admitted(
    proxied_worker: tuple[str, PgProxy], alice: User
) -> None:
    # One reply at a time: the answer's stream slot is given back by its settlement, which
    # comes after the answer and stalls here. The next call, sent at once, is not refused for
    # the slot its predecessor still holds: it is asked again once that is settled.
    base, proxy = proxied_worker
    UserLimits.objects.create(user=alice, concurrent_streams=1)
    key = make_key(alice)
    stalled = proxy.stall_once(ONE_SETTLEMENT)
    first = chat(base, bearer(key))
    assert first.status_code == 200, first.text
    second = chat(base, bearer(key))
    assert stalled.is_set(), "the settlement's connection did not stall"
    assert second.status_code == 200, second.text
    all_settled(user=alice)
    assert UsageRecord.objects.filter(user=alice).count() == 2


@pytest.fixture
def proxied_and_direct_workers(chat_model: ModelConfig) -> Iterator[tuple[str, str, PgProxy]]:
    """Two workers on one database and one upstream: the first reaches PostgreSQL through a
    proxy (and waits for a stalled statement as long as the test holds it), the second
    directly."""
    db = connection.settings_dict
    with (
        pg_proxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)) as proxy,
        running_simulator(api_key=SIM_KEY, tokens_per_s=0, seed=7) as upstream,
    ):
        through_proxy = servers.test_database_url(through_port=proxy.port)
        with (
            daphne_worker(
                upstream, SIM_KEY, DATABASE_URL=through_proxy, DATABASE_STALL_TIMEOUT_SECONDS="30"
            ) as first,
            daphne_worker(upstream, SIM_KEY) as second,
        ):
            try:
                yield first, second, proxy
            finally:
                proxy.restore()


def _one_slot_taken_by_an_answer_settling(
    first: str, second: str, proxy: PgProxy, alice: User
) -> str:
    """Alice's key, under one reply at a time, once the first worker has answered a call of
    hers and its settlement (which gives the slot back) is held by the proxy."""
    UserLimits.objects.create(user=alice, concurrent_streams=1)
    key = make_key(alice)
    # The second worker warm (its pool open): its first refusal comes well within 0.1 s.
    assert httpx.get(f"{second}/v1/models", headers=bearer(key)).status_code == 200
    stalled = proxy.stall_once(ONE_SETTLEMENT)
    answered = chat(first, bearer(key))
    assert answered.status_code == 200, answered.text
    assert stalled.wait(5), "the settlement's connection did not stall"
    return key


def test_a_call_on_the_heels_of_an_answer_another_worker_is_settling_is_admitted(
    proxied_and_direct_workers: tuple[str, str, PgProxy], alice: User
) -> None:
    # One reply at a time, and a client whose calls a proxy spreads over two workers: the
    # next call reaches the second worker while the first still settles the answer it sent
    # (held here for 0.1 s). It is asked again a few times over 0.4 s, and admitted once the
    # slot is given back; before, it was refused at once (429).
    first, second, proxy = proxied_and_direct_workers
    key = _one_slot_taken_by_an_answer_settling(first, second, proxy, alice)
    threading.Timer(0.1, proxy.restore).start()
    next_call = chat(second, bearer(key))
    assert next_call.status_code == 200, next_call.text
    all_settled(user=alice)
    assert UsageRecord.objects.filter(user=alice, state=UsageRecord.State.SETTLED).count() == 2


def test_a_call_refused_for_a_stream_still_running_is_refused_within_half_a_second(
    proxied_and_direct_workers: tuple[str, str, PgProxy], alice: User
) -> None:
    # The settlement held for good: the slot stays taken, and the refusal stands after the
    # tries (0.4 s), with its reason.
    first, second, proxy = proxied_and_direct_workers
    key = _one_slot_taken_by_an_answer_settling(first, second, proxy, alice)
    started = time.monotonic()
    refused = chat(second, bearer(key))
    took = time.monotonic() - started
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "concurrent_streams_limit", refused.text
    assert "at most 1 reply running at once" in refused.json()["error"]["message"]
    assert 0.3 < took < 5, took


def test_one_refused_call_of_a_user_at_a_time_is_asked_again(
    proxied_and_direct_workers: tuple[str, str, PgProxy], alice: User
) -> None:
    # Three calls at once while the slot stays taken: one is asked again (0.4 s), the other
    # two are refused at once, so a client flooding past its limit costs no more than before.
    first, second, proxy = proxied_and_direct_workers
    key = _one_slot_taken_by_an_answer_settling(first, second, proxy, alice)
    took: list[tuple[int, float]] = []

    def call() -> None:
        started = time.monotonic()
        status = chat(second, bearer(key)).status_code
        took.append((status, time.monotonic() - started))

    calls = [threading.Thread(target=call) for _ in range(3)]
    for thread in calls:
        thread.start()
    for thread in calls:
        thread.join(30)
    assert [status for status, _ in took] == [429] * 3, took
    assert sorted(seconds > 0.3 for _, seconds in took) == [False, False, True], took
