"""Admission is one statement: the record it returns is the row in the ledger, refusals keep
their words, ``max_tokens`` may be left to the model's default, API access can be checked,
and a caller holding its own psycopg connection gets the same answers."""

from __future__ import annotations

import asyncio
import math
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from django.db import connection, connections
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations import quota
from conversations.api_keys import ApiAccessDenied
from conversations.errors import (
    ChatError,
    ModelNotAllowed,
    QuotaExceeded,
    RateLimited,
    Suspended,
    TooManyStreams,
)
from conversations.models import (
    Conversation,
    ModelConfig,
    Policy,
    UsageAccount,
    UsageRecord,
    User,
    UserLimits,
)
from tests.support import usage_account

pytestmark = pytest.mark.django_db


def reservation(prompt: int, max_tokens: int) -> int:
    return math.ceil(prompt * quota.PROMPT_PADDING) + quota.PROMPT_SLACK + max_tokens


def admit(user: User, model: ModelConfig, **kwargs: object) -> UsageRecord:
    options: dict[str, object] = {"purpose": "chat", "prompt_tokens": 100, "max_tokens": 500}
    options.update(kwargs)
    return quota.admit(user, model, **options)  # type: ignore[arg-type]


def test_admission_is_one_round_trip_and_returns_the_ledger_row(
    alice: User, chat_model: ModelConfig
) -> None:
    conversation = Conversation.objects.create(owner=alice, model=chat_model)
    with CaptureQueriesContext(connection) as queries:
        record = admit(alice, chat_model, conversation=conversation)
    assert len(queries) == 1
    stored = UsageRecord.objects.get(pk=record.pk)
    for field in (
        "user_id",
        "model_id",
        "purpose",
        "conversation_id",
        "message_id",
        "api_key_id",
        "state",
        "reserved_tokens",
        "prompt_tokens",
        "cache_miss_tokens",
        "day_start",
        "month_start",
        "holds_stream",
        "created_at",
    ):
        assert getattr(record, field) == getattr(stored, field), field
    assert record.reserved_tokens == reservation(100, 500)
    assert record.user == alice and record.conversation == conversation
    with CaptureQueriesContext(connection) as queries:
        assert quota.settle(record.pk, outcome="complete", usage=None, output_text="hi")
    assert len(queries) == 1


def test_without_max_tokens_the_models_default_within_the_cap_is_reserved(
    alice: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    record = admit(alice, chat_model, max_tokens=None)
    assert quota.output_budget(record) == chat_model.default_max_tokens
    assert record.reserved_tokens == reservation(100, chat_model.default_max_tokens)
    UserLimits.objects.create(user=alice, max_output_tokens=300)
    record = admit(alice, chat_model, max_tokens=None)
    assert quota.output_budget(record) == 300
    assert UsageRecord.objects.get(pk=record.pk).reserved_tokens == reservation(100, 300)


def test_refusals_say_what_was_exceeded(
    alice: User, bob: User, charlie: User, chat_model: ModelConfig, reasoner_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    policy = Policy.objects.create(name="Default", is_default=True, all_models=False)
    policy.allowed_models.set([chat_model])
    with pytest.raises(ModelNotAllowed) as refused:
        admit(alice, reasoner_model)
    assert refused.value.message == "You may not use the model deepseek-reasoner."
    assert refused.value.param == "model"

    UserLimits.objects.create(user=alice, concurrent_streams=1, requests_per_minute=5)
    admit(alice, chat_model)
    with pytest.raises(TooManyStreams) as streams:
        admit(alice, chat_model)
    assert streams.value.message == (
        "You may have at most 1 reply running at once; wait for one to finish or stop it."
    )

    UserLimits.objects.create(user=bob, requests_per_minute=1)
    admit(bob, chat_model)
    with pytest.raises(RateLimited) as minute:
        admit(bob, chat_model)
    wait = minute.value.extra["retry_after"]
    assert 0 < wait <= 60
    # "1 request", as its neighbours say "1 reply" (it read "at most 1 requests per minute").
    assert minute.value.message.startswith("You may send at most 1 request per minute; try again")

    UserLimits.objects.create(user=charlie, tokens_per_day=1500)
    taken = admit(charlie, chat_model, prompt_tokens=100, max_tokens=500).reserved_tokens
    periods = quota.periods_at(timezone.now())
    with pytest.raises(QuotaExceeded) as day:
        admit(charlie, chat_model, prompt_tokens=100, max_tokens=1000)
    reset = timezone.localtime(periods.next_day)
    assert day.value.message == (
        f"This would exceed your daily limit of 1,500 tokens ({taken} used or reserved; this "
        f"request may need up to {reservation(100, 1000):,}). A max_tokens of at most "
        f"{1500 - taken - reservation(100, 0):,} would fit what is left today. It resets at "
        f"{reset:%H:%M on %d %b %Y} "
        f"({timezone.get_current_timezone_name()})."
    )
    assert day.value.extra == {"period": "day", "resets_at": periods.next_day.isoformat()}
    assert UsageRecord.objects.filter(user=charlie).count() == 1
    assert UsageAccount.objects.get(user=charlie).day_used == taken


def test_the_monthly_refusal_names_the_first_of_next_month(
    alice: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_month=1000)
    periods = quota.periods_at(timezone.now())
    usage_account(alice, month_used=900)
    with pytest.raises(QuotaExceeded) as refused:
        admit(alice, chat_model, prompt_tokens=10, max_tokens=100)
    assert "monthly limit of 1,000 tokens (900 used or reserved" in refused.value.message
    assert refused.value.extra["resets_at"] == periods.next_month.isoformat()


def test_suspended_and_inactive_users_and_the_api_switch(
    alice: User, bob: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    Policy.objects.create(name="Default", is_default=True, api_access=False)
    admit(alice, chat_model)  # the chat does not ask for API access
    with pytest.raises(ApiAccessDenied):
        admit(alice, chat_model, check_api_access=True)
    UserLimits.objects.create(user=alice, suspended=True)
    with pytest.raises(Suspended) as refused:
        admit(alice, chat_model)
    assert refused.value.message == "Your account is suspended."
    bob.is_active = False
    bob.save()
    with pytest.raises(Suspended):
        admit(bob, chat_model)


def test_a_disabled_model_is_refused(alice: User, chat_model: ModelConfig) -> None:
    chat_model.enabled = False
    chat_model.save()
    with pytest.raises(ModelNotAllowed):
        admit(alice, chat_model)


def test_the_day_of_an_admission_is_the_deployment_time_zones(
    alice: User, chat_model: ModelConfig, settings: object
) -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    settings.TIME_ZONE = "Asia/Tokyo"  # type: ignore[attr-defined]
    moment = datetime(2026, 11, 30, 15, 1, tzinfo=UTC)  # 00:01 on 1 December in Tokyo
    with timezone.override(tokyo):
        params = quota.admission_params(
            alice.pk, chat_model.pk, purpose="chat", prompt_tokens=1, max_tokens=1, now=moment
        )
        with connection.cursor() as cursor:
            cursor.execute(quota.ADMIT_SQL, params)
            record = quota.admission_result(cursor.fetchone(), params)
    stored = UsageRecord.objects.get(pk=record.pk)
    assert stored.day_start == stored.month_start == datetime(2026, 12, 1, tzinfo=tokyo)
    assert stored.created_at == moment


@pytest.mark.django_db(transaction=True)
def test_a_caller_with_its_own_async_psycopg_connection_admits_and_settles(
    alice: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_day=reservation(100, 500))
    info = connection.settings_dict
    conninfo = psycopg.conninfo.make_conninfo(
        dbname=info["NAME"],
        user=info["USER"] or None,
        password=info["PASSWORD"] or None,
        host=info["HOST"] or None,
        port=info["PORT"] or None,
    )

    async def run() -> tuple[UsageRecord, ChatError, bool, bool]:
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            params = quota.admission_params(
                alice.pk, chat_model.pk, purpose="api", prompt_tokens=100, max_tokens=500
            )
            row = await (await conn.execute(quota.ADMIT_SQL, params, prepare=True)).fetchone()
            assert row is not None
            record = quota.admission_result(row, params)
            again = quota.admission_params(
                alice.pk, chat_model.pk, purpose="api", prompt_tokens=1, max_tokens=1
            )
            row = await (await conn.execute(quota.ADMIT_SQL, again, prepare=True)).fetchone()
            assert row is not None
            try:
                quota.admission_result(row, again)
            except ChatError as error:
                refusal = error
            usage = {"prompt_tokens": 90, "completion_tokens": 10}
            settle = quota.settlement_params(record.pk, outcome="complete", usage=usage)
            first = await (await conn.execute(quota.SETTLE_SQL, settle)).fetchone()
            second = await (await conn.execute(quota.SETTLE_SQL, settle)).fetchone()
            assert first is not None and second is not None
            return record, refusal, first[0], second[0]

    record, refusal, settled, settled_again = asyncio.run(run())
    assert isinstance(refusal, QuotaExceeded)
    assert (settled, settled_again) == (True, False)
    stored = UsageRecord.objects.get(pk=record.pk)
    assert (stored.state, stored.total_tokens, stored.purpose) == ("settled", 100, "api")
    account = UsageAccount.objects.get(user=alice)
    assert (account.day_used, account.streams) == (100, 0)


@pytest.mark.django_db(transaction=True)
def test_concurrent_admissions_and_settlements_of_one_user_neither_deadlock_nor_overshoot(
    alice: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    limit = 30 * reservation(100, 500)
    UserLimits.objects.create(user=alice, tokens_per_day=limit, requests_per_minute=10**6)
    failures: list[BaseException] = []
    outcomes: list[str] = []

    def worker() -> None:
        try:
            for _ in range(8):
                try:
                    record = admit(alice, chat_model)
                except QuotaExceeded:
                    outcomes.append("refused")
                    continue
                outcomes.append("admitted")
                # Half the calls never settle: their reservations stay taken.
                if record.pk % 2:
                    usage = {"prompt_tokens": 100, "completion_tokens": 400}
                    assert quota.settle(record.pk, outcome="complete", usage=usage)
        except BaseException as error:  # a deadlock would be a psycopg error here
            failures.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not failures, failures
    assert outcomes.count("admitted") >= 30 and "refused" in outcomes
    ledger = UsageRecord.objects.filter(user=alice).aggregate(
        used=Sum("total_tokens"), reserved=Sum("reserved_tokens")
    )
    account = UsageAccount.objects.get(user=alice)
    assert account.day_used == ledger["used"] + ledger["reserved"] <= limit
    assert account.streams == UsageRecord.objects.filter(user=alice, state="reserved").count()


def test_settlement_gives_back_to_the_counters_it_was_taken_from(
    alice: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    record = admit(alice, chat_model)
    # The day has turned since admission: the reservation still returns to its own day.
    UsageRecord.objects.filter(pk=record.pk).update(
        created_at=record.created_at - timedelta(days=1)
    )
    assert quota.settle(record.pk, outcome="cancelled", usage=None, output_text="")
    assert UsageAccount.objects.get(user=alice).day_used == 100


def test_a_call_of_a_day_that_is_over_gives_nothing_back_to_today(
    alice: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_day=10**6)
    yesterdays = admit(alice, chat_model)
    # As if admitted before midnight: today's first call restarted the day's total since.
    yesterday = quota.periods_at(timezone.now() - timedelta(days=1)).day
    UsageRecord.objects.filter(pk=yesterdays.pk).update(day_start=yesterday)
    UsageAccount.objects.filter(user=alice).update(day_used=0)
    todays = admit(alice, chat_model)
    usage = {"prompt_tokens": 90, "completion_tokens": 10}
    assert quota.settle(yesterdays.pk, outcome="complete", usage=usage)
    account = UsageAccount.objects.get(user=alice)
    # Today's total holds today's reservation only; the stream slot came back all the same.
    assert (account.day_used, account.streams) == (todays.reserved_tokens, 1)
    # This month's total gives back what yesterday's call did not use.
    assert account.month_used == 100 + todays.reserved_tokens
