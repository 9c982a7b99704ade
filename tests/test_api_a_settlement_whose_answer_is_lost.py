"""An API call's settlement that commits while its answer never comes back (the connection to
PostgreSQL cut right after the commit) is tried again without charging twice; the call is
answered, and a key that saves history saves the call once: the retry knows the settlement
it could not hear was its own (``api_calls._settled_by_us``). The same for settlements made
together in one statement (``_Settlements``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from conversations import api_calls, pgpool, quota
from conversations.models import (
    Conversation,
    Message,
    ModelConfig,
    Policy,
    UsageAccount,
    UsageRecord,
    User,
)
from simulator.testing import running_simulator
from tests import servers
from tests.pgproxy import PgProxy, pg_proxy
from tests.servers import daphne_worker
from tests.support import SIM_KEY, eventually
from tests.test_api_support import bearer, chat, make_key

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(90),
    pytest.mark.filterwarnings("ignore:Overriding setting DATABASES"),
]

# A settlement statement (the API's call alone makes one: no other of its statements settles);
# and the statement settling many at once (api_calls.SETTLE_MANY_SQL).
ONE_SETTLEMENT = "usage_settle_own("
MANY_SETTLEMENTS = "FROM unnest("


@pytest.fixture
def proxied_worker(chat_model: ModelConfig) -> Iterator[tuple[str, PgProxy]]:
    """A worker whose every database connection goes through a proxy."""
    db = connection.settings_dict
    with (
        pg_proxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)) as proxy,
        running_simulator(api_key=SIM_KEY, tokens_per_s=0, seed=7) as upstream,
    ):
        through_proxy = servers.test_database_url(through_port=proxy.port)
        with daphne_worker(upstream, SIM_KEY, DATABASE_URL=through_proxy) as base:
            yield base, proxy


def _charged_once(user: User) -> UsageRecord:
    record = UsageRecord.objects.get(user=user, purpose=UsageRecord.Purpose.API)
    assert record.state == UsageRecord.State.SETTLED
    assert record.outcome == "complete" and not record.estimated
    assert record.completion_tokens > 0 and record.reserved_tokens == 0
    account = UsageAccount.objects.get(user=user)
    assert (account.day_used, account.month_used) == (record.total_tokens,) * 2
    assert account.streams == 0
    return record


@pytest.mark.parametrize("stream", [False, True])
def test_a_call_whose_settlement_answer_is_lost_is_charged_once(
    proxied_worker: tuple[str, PgProxy], alice: User, stream: bool
) -> None:
    base, proxy = proxied_worker
    key = make_key(alice)
    lost = proxy.lose_answer_once(ONE_SETTLEMENT)
    response = chat(base, bearer(key), stream=stream)
    assert response.status_code == 200, response.text
    eventually(lambda: _charged_once(alice))  # settled once the answer has gone out
    assert lost.is_set(), "the settlement's answer was not lost"


def test_a_saved_call_whose_settlement_answer_is_lost_is_saved_once(
    proxied_worker: tuple[str, PgProxy], alice: User
) -> None:
    base, proxy = proxied_worker
    key = make_key(alice, save_history=True)
    lost = proxy.lose_answer_once(ONE_SETTLEMENT)
    response = chat(base, bearer(key), messages=[{"role": "user", "content": "Saved once"}])
    assert response.status_code == 200, response.text

    def saved_once() -> tuple[UsageRecord, Conversation, Message]:
        record = _charged_once(alice)
        [saved] = Conversation.objects.filter(owner=alice)
        return record, saved, Message.objects.get(conversation=saved, role="assistant")

    record, saved, reply = eventually(saved_once)
    assert lost.is_set(), "the settlement's answer was not lost"
    assert saved.title == "Saved once"
    assert reply.content == response.json()["choices"][0]["message"]["content"]
    assert record.message_id == reply.pk


async def test_settlements_made_together_whose_answer_is_lost_are_made_once(
    proxied_pool: PgProxy, alice: User, bob: User, chat_model: ModelConfig
) -> None:
    await Policy.objects.all().adelete()  # no limits
    admit = sync_to_async(quota.admit)
    records = [
        await admit(user, chat_model, purpose="api", prompt_tokens=10, max_tokens=100)
        for user in [alice, bob] * 10
    ]
    usage = {"prompt_tokens": 10, "completion_tokens": 5}
    lost = proxied_pool.lose_answer_once(MANY_SETTLEMENTS)
    try:
        # The first is settled alone; the nineteen that end while it runs, together.
        settling: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(
                api_calls.settle_in_group(
                    record.user_id,
                    quota.settlement_params(record.pk, outcome="complete", usage=usage),
                )
            )
            for record in records
        ]
        await asyncio.wait_for(asyncio.gather(*settling), 30)
        assert lost.is_set(), "the settlements' answer was not lost"
        settled = await sync_to_async(
            lambda: sorted(
                UsageRecord.objects.filter(pk__in=[r.pk for r in records]).values_list(
                    "state", "total_tokens"
                )
            )
        )()
        assert settled == [("settled", 15)] * 20
        for user in (alice, bob):
            account = await UsageAccount.objects.aget(user=user)
            assert (account.day_used, account.month_used, account.streams) == (150, 150, 0)
    finally:
        await pgpool.aclose_pool()
