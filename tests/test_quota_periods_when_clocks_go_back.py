"""When clocks go back at midnight, the hour after midnight happens twice: the day (and on the
1st, the month) still starts at the first midnight, and the limit holds through both passes."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.utils import timezone

from conversations import quota
from conversations.errors import QuotaExceeded
from conversations.models import ModelConfig, Policy, UsageRecord, User, UserLimits

pytestmark = pytest.mark.django_db

# Azores, 25 Oct 2026: at 01:00 (UTC+0) clocks go back to 00:00 (UTC-1).
AZORES = ZoneInfo("Atlantic/Azores")
# Havana, 1 Nov 2026: at 01:00 (UTC-4) clocks go back to 00:00 (UTC-5); a new month too.
HAVANA = ZoneInfo("America/Havana")


@pytest.mark.parametrize(
    ("zone", "first_pass", "second_pass", "midnight"),
    [
        (
            AZORES,
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
            datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
            datetime(2026, 10, 25, 0, 0, tzinfo=UTC),
        ),
        (
            HAVANA,
            datetime(2026, 11, 1, 4, 30, tzinfo=UTC),
            datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
            datetime(2026, 11, 1, 4, 0, tzinfo=UTC),
        ),
    ],
)
def test_the_repeated_hour_after_midnight_belongs_to_the_day_that_began_at_the_first_midnight(
    zone: ZoneInfo, first_pass: datetime, second_pass: datetime, midnight: datetime
) -> None:
    with timezone.override(zone):
        first, second = quota.periods_at(first_pass), quota.periods_at(second_pass)
        later = quota.periods_at(second_pass.replace(hour=second_pass.hour + 3))
    # In UTC: two datetimes of one zone compare equal whatever their fold.
    assert [p.day.astimezone(UTC) for p in (first, second, later)] == [midnight] * 3
    months = {p.month.astimezone(UTC) for p in (first, second, later)}
    assert len(months) == 1
    if zone is HAVANA:
        assert months == {midnight}  # 1 November: the month starts at the first midnight


def test_a_daily_limit_is_not_reset_when_midnight_happens_twice(
    settings: object, alice: User, chat_model: ModelConfig
) -> None:
    settings.TIME_ZONE = "Atlantic/Azores"  # type: ignore[attr-defined]
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_day=1000)
    admitted = 0
    with timezone.override(AZORES):
        for moment in (
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 00:30 local, first pass
            datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # 00:30 local, second pass
            datetime(2026, 10, 25, 3, 0, tzinfo=UTC),  # 02:00 local
        ):
            params = quota.admission_params(
                alice.pk,
                chat_model.pk,
                purpose="chat",
                prompt_tokens=10,
                max_tokens=800,
                now=moment,
            )
            try:
                with transaction.atomic():
                    quota.run_admission(params)
                admitted += 1
            except QuotaExceeded as refused:
                assert refused.extra["period"] == "day"
    reserved = sum(UsageRecord.objects.values_list("reserved_tokens", flat=True))
    assert admitted == 1
    assert reserved == math.ceil(10 * quota.PROMPT_PADDING) + quota.PROMPT_SLACK + 800
