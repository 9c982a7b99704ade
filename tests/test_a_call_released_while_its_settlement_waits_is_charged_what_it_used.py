"""An API call whose settlement waits for a database its worker cannot reach, for longer than
the upstream deadline and ``GENERATION_STALE_SECONDS``, is released by another worker's reaper
(``quota.release_orphaned_reservations``: settled ``interrupted``, charged its prompt as
estimated at admission). When the settlement gets through it still charges what the provider
billed, the difference from the release and no more, alone or settled with others
(``api_calls._Settlements``).

Before, the settlement found the call settled and did nothing: the completion the provider
billed was never charged."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import api_calls, pgpool, quota
from conversations.models import ModelConfig, Policy, UsageAccount, UsageRecord, User
from tests.pgproxy import PgProxy

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore:Overriding setting DATABASES"),
]

USAGE = {"prompt_tokens": 12, "completion_tokens": 30}  # admitted as 10 prompt tokens


async def test_calls_released_while_their_settlement_waits_are_charged_what_they_used(
    proxied_pool: PgProxy, alice: User, chat_model: ModelConfig
) -> None:
    await Policy.objects.all().adelete()  # no limits
    admit = sync_to_async(quota.admit)
    records = [
        await admit(alice, chat_model, purpose="api", prompt_tokens=10, max_tokens=100)
        for _ in range(3)
    ]
    await asyncio.to_thread(proxied_pool.cut)
    try:
        # The first is settled alone, the two others together after it.
        settling: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(
                api_calls.settle_in_group(
                    alice.pk, quota.settlement_params(record.pk, outcome="complete", usage=USAGE)
                )
            )
            for record in records
        ]
        await asyncio.sleep(0.5)
        # Another worker's reaper, the calls older than any call may run.
        released = await sync_to_async(quota.release_orphaned_reservations)(timedelta(0))
        assert released == 3
    finally:
        await asyncio.to_thread(proxied_pool.restore)
    try:
        await asyncio.wait_for(asyncio.gather(*settling), 30)
        for record in records:
            await record.arefresh_from_db()
            assert record.state == UsageRecord.State.SETTLED
            assert record.outcome == "complete" and not record.estimated
            assert (record.prompt_tokens, record.completion_tokens) == (12, 30)
        account = await UsageAccount.objects.aget(user=alice)
        assert (account.day_used, account.month_used, account.streams) == (3 * 42, 3 * 42, 0)
    finally:
        await pgpool.aclose_pool()
