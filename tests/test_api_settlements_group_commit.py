"""API calls that end together are settled together: one statement, one commit, every
settlement exact, and each caller told only once its own settlement has committed."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from conversations import api_calls, pgpool, quota
from conversations.models import ModelConfig, Policy, UsageAccount, UsageRecord, User

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def _transactions_that_wrote(ids: list[int]) -> int:
    """Distinct transactions that last wrote these ledger rows (a row's xmin)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(DISTINCT xmin::text) FROM conversations_usagerecord WHERE id = ANY(%s)",
            [ids],
        )
        (count,) = cursor.fetchone()
    return int(count)


async def test_settlements_ending_together_commit_together(
    alice: User, bob: User, chat_model: ModelConfig
) -> None:
    await Policy.objects.all().adelete()  # no limits
    admit = sync_to_async(quota.admit)
    records = [
        await admit(user, chat_model, purpose="api", prompt_tokens=10, max_tokens=100)
        for user in [alice, bob] * 10
    ]
    usage = {"prompt_tokens": 10, "completion_tokens": 5}
    try:
        await asyncio.gather(
            *(
                api_calls.settle_in_group(
                    record.user_id,
                    quota.settlement_params(record.pk, outcome="complete", usage=usage),
                )
                for record in records
            )
        )
        # Every caller returned after its settlement committed: all are visible now.
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
        # The first alone, the other nineteen (which ended while it ran) in one more.
        written = await sync_to_async(_transactions_that_wrote)([r.pk for r in records])
        assert written <= 3
        # A settlement already made is not made twice, in a group or alone.
        again = quota.settlement_params(records[0].pk, outcome="complete", usage=usage)
        await asyncio.gather(
            api_calls.settle_in_group(alice.pk, again), api_calls.settle_in_group(alice.pk, again)
        )
        account = await UsageAccount.objects.aget(user=alice)
        assert account.day_used == 150
    finally:
        await pgpool.aclose_pool()
