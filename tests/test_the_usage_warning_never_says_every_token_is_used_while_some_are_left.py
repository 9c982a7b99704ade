"""The usage warning from 80% on reads the share used as the dashboard reads a ratio, never
rounded up to 100%: with 4 of 1,000,000 tokens left it said "You have used 100% of today's
1,000,000 tokens." All of them used, it says so in words."""

from __future__ import annotations

import pytest

from conversations.models import Policy, User, UserLimits
from tests.support import client_for, usage_account

pytestmark = pytest.mark.django_db


def warning_of(user: User) -> str:
    warning: str = client_for(user).get("/usage/summary.json").json()["warning"]
    return warning


def test_four_tokens_left_of_a_million_is_not_100_percent(alice: User) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_day=1_000_000)
    usage_account(alice, day_used=999_996)
    assert warning_of(alice) == "You have used 99.9% of today's 1,000,000 tokens."


def test_every_token_used_is_said_in_words(alice: User) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_day=1_000_000)
    usage_account(alice, day_used=1_000_000)
    assert warning_of(alice) == "You have used all of today's 1,000,000 tokens."
