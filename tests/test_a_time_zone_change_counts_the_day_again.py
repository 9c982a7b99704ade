"""A change of the deployment's time zone (TIME_ZONE) counts the user's day and month again from
the ledger (``usage_recount_periods``, migration 0029), and the usage page counts them as
admission does.

Before, a zone whose midnight came later than the old zone's made admission take the counter's
day for over: a user at the day's limit was given the day's allowance again. Back the other
way, the usage page, which showed a counter only for the period it names, said 0 tokens used
today while admission went on counting the old zone's day."""

from __future__ import annotations

import itertools
import math
import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone

from conversations import quota
from conversations.errors import QuotaExceeded
from conversations.models import ModelConfig, Policy, UsageAccount, UsageRecord, User, UserLimits
from tests import servers

pytestmark = pytest.mark.django_db

#: Whole-hour zones from UTC-12 to UTC+14 (Etc/GMT's signs are the other way round).
ZONES = [f"Etc/GMT{-offset:+d}" if offset else "UTC" for offset in range(-12, 15)]


def reservation(prompt: int, max_tokens: int) -> int:
    return math.ceil(prompt * quota.PROMPT_PADDING) + quota.PROMPT_SLACK + max_tokens


def _day_start(zone: str) -> object:
    with timezone.override(zone):
        return quota.periods_at(timezone.now()).day


def _zones_with_midnight_later() -> tuple[str, str]:
    """Two zones whose days began at different times, less than a day apart: the second's
    midnight came hours after the first's (both days hold the calls made now)."""
    starts = {zone: _day_start(zone) for zone in ZONES}
    pairs = [
        (first, second)
        for first, second in itertools.permutations(ZONES, 2)
        if timedelta(hours=2) <= starts[second] - starts[first] < timedelta(hours=22)  # type: ignore[operator]
    ]
    return max(pairs, key=lambda pair: starts[pair[1]] - starts[pair[0]])  # type: ignore[operator]


def _admit(user: User, model: ModelConfig, max_tokens: int) -> UsageRecord:
    return quota.admit(user, model, purpose="chat", prompt_tokens=10, max_tokens=max_tokens)


def _spend(user: User, model: ModelConfig, tokens: int) -> None:
    record = _admit(user, model, max_tokens=tokens)
    usage = {"prompt_tokens": 10, "completion_tokens": tokens - 10}
    assert quota.settle(record.pk, outcome="complete", usage=usage)


@pytest.fixture
def limited(alice: User) -> User:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_day=1000, tokens_per_month=100_000)
    return alice


def test_a_later_midnight_does_not_give_the_day_again(
    settings: object, limited: User, chat_model: ModelConfig
) -> None:
    old_zone, new_zone = _zones_with_midnight_later()
    settings.TIME_ZONE = old_zone  # type: ignore[attr-defined]
    _spend(limited, chat_model, 900)
    running = _admit(limited, chat_model, max_tokens=50)  # runs across the change
    assert quota.usage_summary(limited)["today"]["used"] == 900 + running.reserved_tokens

    settings.TIME_ZONE = new_zone  # type: ignore[attr-defined]
    summary = quota.usage_summary(limited)
    # The calls were made after the new zone's midnight too: today's in either zone.
    assert summary["today"]["used"] == 900 + running.reserved_tokens
    assert summary["month"]["used"] == 900 + running.reserved_tokens
    with pytest.raises(QuotaExceeded) as refused:
        _admit(limited, chat_model, max_tokens=200)
    assert "daily limit of 1,000 tokens" in refused.value.message

    # The counter was counted again in the new zone's day, and the call running across the
    # change gives back to it what it did not use.
    account = UsageAccount.objects.get(user=limited)
    assert account.day_start == _day_start(new_zone)
    assert account.day_used == 900 + running.reserved_tokens
    assert quota.settle(
        running.pk, outcome="complete", usage={"prompt_tokens": 10, "completion_tokens": 5}
    )
    account.refresh_from_db()
    assert account.day_used == account.month_used == 915
    assert quota.usage_summary(limited)["today"]["left"] == 85
    small = _admit(limited, chat_model, max_tokens=20)
    assert small.reserved_tokens == reservation(10, 20)


def test_an_earlier_midnight_counts_the_day_the_page_shows(
    settings: object, limited: User, chat_model: ModelConfig
) -> None:
    new_zone, old_zone = _zones_with_midnight_later()  # back from the later midnight
    settings.TIME_ZONE = old_zone  # type: ignore[attr-defined]
    _spend(limited, chat_model, 600)

    settings.TIME_ZONE = new_zone  # type: ignore[attr-defined]
    # Before anything is admitted in the new zone, the page says what admission will count.
    summary = quota.usage_summary(limited)
    assert (summary["today"]["used"], summary["today"]["left"]) == (600, 400)
    assert quota.usage_summaries([limited])[limited.pk]["today"]["used"] == 600
    with pytest.raises(QuotaExceeded):
        _admit(limited, chat_model, max_tokens=500)
    _spend(limited, chat_model, 300)
    account = UsageAccount.objects.get(user=limited)
    assert (account.day_start, account.day_used) == (_day_start(new_zone), 900)
    assert quota.usage_summary(limited)["today"]["used"] == 900


def test_a_day_that_ended_is_not_counted_again(
    settings: object, limited: User, chat_model: ModelConfig
) -> None:
    """An ordinary midnight (a whole day after the counter's) starts the day from zero, as
    before: only a start less than a period away from the counter's is a change of zone."""
    settings.TIME_ZONE = "UTC"  # type: ignore[attr-defined]
    _spend(limited, chat_model, 900)
    yesterday = quota.periods_at(timezone.now() - timedelta(days=1)).day
    UsageAccount.objects.filter(user=limited).update(day_start=yesterday)
    UsageRecord.objects.filter(user=limited).update(created_at=yesterday + timedelta(hours=1))
    assert quota.usage_summary(limited)["today"]["used"] == 0
    _admit(limited, chat_model, max_tokens=900)  # the whole day's allowance again


@pytest.mark.django_db(transaction=True)
def test_counting_again_waits_for_a_settlement_under_way_and_never_deadlocks(
    settings: object, limited: User, chat_model: ModelConfig
) -> None:
    """The recount locks the calls it names again before the counter, as a settlement locks
    its call before the counter: a settlement under way is waited for. Locking the counter
    first, the two deadlocked and PostgreSQL aborted one (the user's send, or the settlement)."""
    old_zone, new_zone = _zones_with_midnight_later()
    settings.TIME_ZONE = old_zone  # type: ignore[attr-defined]
    running = _admit(limited, chat_model, max_tokens=50)
    settings.TIME_ZONE = new_zone  # type: ignore[attr-defined]

    conninfo = servers.test_database_url()
    call_locked = threading.Event()
    settled: list[BaseException | None] = []

    def settlement() -> None:
        """A settlement's locks in its order, held a moment between them: its call's row,
        then (once the admission below is under way) the user's counter."""
        try:
            with psycopg.connect(conninfo) as conn:
                conn.execute(
                    "UPDATE conversations_usagerecord SET outcome = outcome WHERE id = %s",
                    [running.pk],
                )
                call_locked.set()
                time.sleep(0.8)
                conn.execute(
                    "UPDATE conversations_usageaccount SET streams = streams WHERE user_id = %s",
                    [limited.pk],
                )
            settled.append(None)
        except BaseException as error:
            settled.append(error)

    worker = threading.Thread(target=settlement)
    worker.start()
    assert call_locked.wait(10)
    try:
        admitted = _admit(limited, chat_model, max_tokens=20)  # counts the day again
    finally:
        worker.join(20)
    assert settled == [None]
    assert admitted.reserved_tokens == reservation(10, 20)
    account = UsageAccount.objects.get(user=limited)
    assert account.day_start == _day_start(new_zone)
    assert account.day_used == running.reserved_tokens + admitted.reserved_tokens
