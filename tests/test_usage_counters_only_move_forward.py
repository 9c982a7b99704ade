"""A user's day, month and minute counters only move forward. The periods a call is counted in
come from the admitting worker's clock, read before the statement waits for the user's row: a
call stamped just before midnight can commit just after one stamped just after it, and two
workers' clocks can be a second apart. Each such call took the counter back to the old period,
and the next one forward again from zero: around midnight every call was admitted, far past the
limit. Now a call of a period the counter has left is counted in the counter's own.

And the app's own title call after a reply does not count against the user's requests per
minute (it refused the user's second message of a minute under a limit of 2)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.utils import timezone

from conversations import quota
from conversations.errors import QuotaExceeded, RateLimited
from conversations.models import ModelConfig, Policy, UsageAccount, UsageRecord, User, UserLimits

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
MIDNIGHT = datetime(2026, 3, 10, tzinfo=PARIS)  # the 10th begins
RESERVED = math.ceil(100 * quota.PROMPT_PADDING) + quota.PROMPT_SLACK + 500


@pytest.fixture(autouse=True)
def paris(settings: object) -> object:
    settings.TIME_ZONE = "Europe/Paris"  # type: ignore[attr-defined]
    with timezone.override(PARIS):
        yield


def admit_at(user: User, model: ModelConfig, now: datetime, purpose: str = "chat") -> UsageRecord:
    params = quota.admission_params(
        user.pk, model.pk, purpose=purpose, prompt_tokens=100, max_tokens=500, now=now
    )
    with transaction.atomic():
        return quota.run_admission(params)


def admitted(user: User, model: ModelConfig, moments: list[datetime]) -> list[bool]:
    outcomes = []
    for moment in moments:
        try:
            admit_at(user, model, moment)
            outcomes.append(True)
        except (QuotaExceeded, RateLimited):
            outcomes.append(False)
    return outcomes


def test_a_call_of_the_old_day_committing_late_is_counted_in_the_new_one(
    alice: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_day=2 * RESERVED)
    after = admit_at(alice, chat_model, MIDNIGHT + timedelta(milliseconds=50))
    # Stamped before midnight, committed after the call above (it waited for the user's row).
    late = admit_at(alice, chat_model, MIDNIGHT - timedelta(milliseconds=50))
    account = UsageAccount.objects.get(user=alice)
    assert (account.day_start, account.day_used) == (MIDNIGHT, 2 * RESERVED)
    with pytest.raises(QuotaExceeded):
        admit_at(alice, chat_model, MIDNIGHT + timedelta(seconds=1))
    # The late call's row names the day it was counted in; its settlement gives back there.
    days = dict(UsageRecord.objects.values_list("pk", "day_start"))
    assert days == {after.pk: MIDNIGHT, late.pk: MIDNIGHT}
    quota.settle(late.pk, outcome="complete", usage={"prompt_tokens": 90, "completion_tokens": 10})
    assert UsageAccount.objects.get(user=alice).day_used == RESERVED + 100


@pytest.mark.parametrize("limit", ["tokens_per_day", "tokens_per_month"])
def test_two_workers_a_second_apart_at_midnight_admit_no_more_than_the_limit(
    alice: User, chat_model: ModelConfig, limit: str
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, **{limit: 3 * RESERVED})
    first_of_april = datetime(2026, 4, 1, tzinfo=PARIS)  # a new day and a new month
    moments = [
        first_of_april + timedelta(milliseconds=100 * i) - timedelta(seconds=i % 2)
        for i in range(10)
    ]
    assert admitted(alice, chat_model, moments) == [True] * 3 + [False] * 7
    account = UsageAccount.objects.get(user=alice)
    assert (account.day_start, account.month_start) == (first_of_april, first_of_april)
    assert UsageRecord.objects.filter(day_start=first_of_april).count() == 3


def test_two_workers_a_second_apart_at_a_new_minute_admit_no_more_than_its_limit(
    alice: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, requests_per_minute=3)
    noon = datetime(2026, 3, 10, 12, tzinfo=PARIS)
    moments = [noon + timedelta(milliseconds=100 * i) - timedelta(seconds=i % 2) for i in range(10)]
    assert admitted(alice, chat_model, moments) == [True] * 3 + [False] * 7


def test_a_title_call_is_not_one_of_the_users_requests_per_minute(
    alice: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, requests_per_minute=2)
    noon = datetime(2026, 3, 10, 12, tzinfo=PARIS)
    admit_at(alice, chat_model, noon)
    admit_at(alice, chat_model, noon + timedelta(seconds=1), purpose="title")
    admit_at(alice, chat_model, noon + timedelta(seconds=2))  # the user's second message
    with pytest.raises(RateLimited):
        admit_at(alice, chat_model, noon + timedelta(seconds=3))
    # Still admitted at the limit: the title after the user's last reply of the minute.
    admit_at(alice, chat_model, noon + timedelta(seconds=4), purpose="title")
