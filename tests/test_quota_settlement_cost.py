"""Settlement costs a call at the prices in force on its local day, once, in one statement."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from conversations import quota
from conversations.models import ModelConfig, ModelPrice, Policy, UsageRecord, User

pytestmark = pytest.mark.django_db

USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 333,
    "prompt_cache_hit_tokens": 1000,
    "prompt_cache_miss_tokens": 200,
    "completion_tokens_details": {"reasoning_tokens": 33},
}


def admitted_at(user: User, model: ModelConfig, moment: datetime) -> UsageRecord:
    Policy.objects.all().delete()
    record = quota.admit(user, model, purpose="chat", prompt_tokens=1000, max_tokens=500)
    UsageRecord.objects.filter(pk=record.pk).update(created_at=moment)
    return record


@pytest.fixture
def priced(chat_model: ModelConfig) -> ModelConfig:
    chat_model.price_input_cache_hit = Decimal("0.0100")
    chat_model.price_input_cache_miss = Decimal("0.1000")
    chat_model.price_output = Decimal("1.0000")
    chat_model.save()
    ModelPrice.objects.create(
        model=chat_model,
        effective_from=date(2026, 11, 1),
        input_cache_hit=Decimal("0.0280"),
        input_cache_miss=Decimal("0.2800"),
        output=Decimal("0.4200"),
    )
    ModelPrice.objects.create(
        model=chat_model,
        effective_from=date(2026, 12, 1),
        input_cache_hit=Decimal("0.0700"),
        input_cache_miss=Decimal("0.5600"),
        output=Decimal("1.6800"),
    )
    return chat_model


def test_a_call_is_costed_at_the_price_of_its_local_day(
    alice: User, priced: ModelConfig, settings: object
) -> None:
    settings.TIME_ZONE = "Asia/Tokyo"  # type: ignore[attr-defined]
    # 00:30 on 1 December in Tokyo, still 30 November in UTC.
    record = admitted_at(alice, priced, datetime(2026, 11, 30, 15, 30, tzinfo=UTC))
    with timezone.override(ZoneInfo("Asia/Tokyo")):
        assert quota.settle(record.pk, outcome="complete", usage=USAGE)
    record.refresh_from_db()
    # December's prices: 1000 x 0.07 + 200 x 0.56 + 333 x 1.68 per million.
    assert record.cost == Decimal("0.00074144")
    counts = quota.counts_from_usage(USAGE)
    assert record.cost == quota.cost_of(priced, counts, date(2026, 12, 1)).quantize(Decimal("1e-8"))
    assert (record.prompt_tokens, record.cache_hit_tokens, record.cache_miss_tokens) == (
        1200,
        1000,
        200,
    )
    assert (record.completion_tokens, record.reasoning_tokens, record.total_tokens) == (
        333,
        33,
        1533,
    )
    assert (record.state, record.outcome, record.estimated) == ("settled", "complete", False)
    assert record.settled_at is not None and record.reserved_tokens == 0


def test_the_same_moment_in_utc_is_the_previous_day_and_its_price(
    alice: User, priced: ModelConfig
) -> None:
    record = admitted_at(alice, priced, datetime(2026, 11, 30, 15, 30, tzinfo=UTC))
    with timezone.override(UTC):
        assert quota.settle(record.pk, outcome="complete", usage=USAGE)
    record.refresh_from_db()
    # November's: 1000 x 0.028 + 200 x 0.28 + 333 x 0.42 per million.
    assert record.cost == Decimal("0.00022386")


def test_before_any_dated_price_the_models_own_prices_apply(
    alice: User, priced: ModelConfig
) -> None:
    record = admitted_at(alice, priced, datetime(2026, 10, 15, 12, tzinfo=UTC))
    assert quota.settle(record.pk, outcome="complete", usage=USAGE)
    record.refresh_from_db()
    # 1000 x 0.01 + 200 x 0.1 + 333 x 1 per million.
    assert record.cost == Decimal("0.000363")


def test_without_the_providers_usage_the_text_is_estimated_and_flagged(
    alice: User, priced: ModelConfig
) -> None:
    record = admitted_at(alice, priced, datetime(2026, 10, 15, 12, tzinfo=UTC))
    text = "partial answer " * 10
    assert quota.settle(record.pk, outcome="cancelled", usage=None, output_text=text)
    assert not quota.settle(record.pk, outcome="complete", usage=USAGE)  # once
    record.refresh_from_db()
    completion = quota.estimate_tokens(text)
    assert (record.prompt_tokens, record.cache_hit_tokens, record.cache_miss_tokens) == (
        1000,
        0,
        1000,
    )
    assert (record.completion_tokens, record.total_tokens, record.estimated) == (
        completion,
        1000 + completion,
        True,
    )
    assert record.outcome == "cancelled"
    assert record.cost == (1000 * Decimal("0.1") + completion * Decimal("1")) / 1_000_000
