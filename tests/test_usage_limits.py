"""Limits are reserved before a call and never overshot; refusals say what and until when."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from conversations import quota
from conversations.errors import (
    InvalidParameter,
    ModelNotAllowed,
    QuotaExceeded,
    RateLimited,
    Suspended,
    TooManyStreams,
)
from conversations.models import ModelConfig, Policy, UsageAccount, UsageRecord, User, UserLimits
from tests.support import usage_account

pytestmark = pytest.mark.django_db


def reservation(prompt: int, max_tokens: int) -> int:
    return math.ceil(prompt * quota.PROMPT_PADDING) + quota.PROMPT_SLACK + max_tokens


def admit(user: User, model: ModelConfig, prompt: int = 100, max_tokens: int = 500) -> UsageRecord:
    with transaction.atomic():
        return quota.admit(user, model, purpose="chat", prompt_tokens=prompt, max_tokens=max_tokens)


def test_a_request_exactly_at_the_daily_limit_is_admitted_and_one_more_is_not(
    alice: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    limit = reservation(100, 500)
    UserLimits.objects.create(user=alice, tokens_per_day=limit)
    record = admit(alice, chat_model)
    assert record.reserved_tokens == limit
    with pytest.raises(QuotaExceeded) as refused:
        admit(alice, chat_model, prompt=0, max_tokens=1)
    assert "daily limit" in refused.value.message and "resets at" in refused.value.message
    assert refused.value.extra["period"] == "day"
    assert UsageRecord.objects.count() == 1  # the refusal left nothing behind


def test_settling_gives_back_what_was_not_used(alice: User, chat_model: ModelConfig) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_day=reservation(100, 500))
    record = admit(alice, chat_model)
    usage = {
        "prompt_tokens": 90,
        "completion_tokens": 10,
        "total_tokens": 100,
        "prompt_cache_hit_tokens": 64,
        "prompt_cache_miss_tokens": 26,
    }
    assert quota.settle(record.pk, outcome="complete", usage=usage)
    assert not quota.settle(record.pk, outcome="complete", usage=usage)  # exactly once
    record.refresh_from_db()
    assert (
        record.total_tokens,
        record.cache_hit_tokens,
        record.reserved_tokens,
        record.estimated,
    ) == (100, 64, 0, False)
    account = UsageAccount.objects.get(user=alice)
    assert (account.day_used, account.streams) == (100, 0)
    admit(alice, chat_model, prompt=100, max_tokens=500 - 100)  # the returned room is usable


def test_the_monthly_limit_applies_across_days(alice: User, chat_model: ModelConfig) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_month=1000)
    usage_account(alice, month_used=900)
    with pytest.raises(QuotaExceeded) as refused:
        admit(alice, chat_model, prompt=10, max_tokens=100)
    assert refused.value.extra["period"] == "month"


def test_days_and_months_roll_over_at_midnight_of_the_deployment_time_zone(
    settings: object,
) -> None:
    settings.TIME_ZONE = "Asia/Tokyo"  # type: ignore[attr-defined]
    tokyo = ZoneInfo("Asia/Tokyo")
    with timezone.override(tokyo):
        before = quota.periods_at(
            datetime(2026, 11, 30, 14, 59, tzinfo=UTC)
        )  # 23:59 on the 30th in Tokyo
        after = quota.periods_at(datetime(2026, 11, 30, 15, 1, tzinfo=UTC))  # 00:01 on 1 December
    assert before.day == datetime(2026, 11, 30, tzinfo=tokyo)
    assert before.month == datetime(2026, 11, 1, tzinfo=tokyo)
    assert before.next_day == after.day == datetime(2026, 12, 1, tzinfo=tokyo)
    assert before.next_month == after.month == datetime(2026, 12, 1, tzinfo=tokyo)
    assert after.day.astimezone(UTC) == datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


def test_yesterdays_usage_does_not_count_today(alice: User, chat_model: ModelConfig) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_day=reservation(100, 500))
    usage_account(alice, day_used=10**9, days_ago=1)
    admit(alice, chat_model)


def test_requests_per_minute_and_concurrent_streams_are_enforced(
    alice: User, bob: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, requests_per_minute=2)
    admit(alice, chat_model)
    admit(alice, chat_model)
    with pytest.raises(RateLimited) as refused:
        admit(alice, chat_model)
    assert refused.value.extra["retry_after"] > 0
    UserLimits.objects.create(user=bob, concurrent_streams=1)
    first = admit(bob, chat_model)
    with pytest.raises(TooManyStreams):
        admit(bob, chat_model)
    quota.settle(first.pk, outcome="complete", usage=None, output_text="done")
    admit(bob, chat_model)


def test_a_disallowed_model_and_a_suspended_user_are_refused(
    alice: User, chat_model: ModelConfig, reasoner_model: ModelConfig
) -> None:
    policy = (
        Policy.objects.get(is_default=True)
        if Policy.objects.filter(is_default=True).exists()
        else Policy.objects.create(name="Default", is_default=True)
    )
    policy.all_models = False
    policy.save()
    policy.allowed_models.set([chat_model])
    admit(alice, chat_model)
    with pytest.raises(ModelNotAllowed):
        admit(alice, reasoner_model)
    UserLimits.objects.create(user=alice, suspended=True)
    with pytest.raises(Suspended):
        admit(alice, chat_model)


def test_max_tokens_above_the_cap_is_rejected_naming_the_cap(
    alice: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, max_output_tokens=1024)
    with pytest.raises(InvalidParameter) as refused:
        admit(alice, chat_model, max_tokens=1025)
    assert "1024" in refused.value.message and refused.value.param == "max_tokens"
    assert quota.max_tokens_for(chat_model, None, quota.limits_for(alice)) == 1024


def test_the_most_generous_group_policy_applies_unless_the_user_has_their_own(
    alice: User, chat_model: ModelConfig, reasoner_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    Policy.objects.create(name="Default", is_default=True, tokens_per_day=10)
    interns, staff = Group.objects.create(name="interns"), Group.objects.create(name="engineers")
    small = Policy.objects.create(
        name="small",
        tokens_per_day=1000,
        tokens_per_month=None,
        max_output_tokens=512,
        all_models=False,
    )
    small.allowed_models.set([chat_model])
    small.groups.set([interns])
    big = Policy.objects.create(
        name="big",
        tokens_per_day=50_000,
        tokens_per_month=100_000,
        max_output_tokens=None,
        all_models=False,
    )
    big.allowed_models.set([reasoner_model])
    big.groups.set([staff])
    assert quota.limits_for(alice).tokens_per_day == 10  # no group: the default
    alice.groups.set([interns, staff])
    limits = quota.limits_for(alice)
    assert (limits.tokens_per_day, limits.tokens_per_month, limits.max_output_tokens) == (
        50_000,
        None,
        None,
    )
    assert limits.allowed_model_ids == {chat_model.pk, reasoner_model.pk}
    own = UserLimits.objects.create(user=alice, policy=small, tokens_per_day=2000)
    limits = quota.limits_for(alice)
    assert (limits.tokens_per_day, limits.max_output_tokens, limits.allowed_model_ids) == (
        2000,
        512,
        {chat_model.pk},
    )
    own.policy = None
    own.save()
    assert quota.limits_for(alice).tokens_per_day == 2000  # override on top of the groups
