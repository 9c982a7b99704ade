"""When more than one limit stands in the way, the user is told of the one that keeps them
waiting longest: a spent month over a spent day (or minute), in the refusal, the warning and
the conversation page alike."""

from __future__ import annotations

import json
import re

import pytest
from django.db import transaction
from django.utils import timezone

from conversations import quota
from conversations.errors import QuotaExceeded
from conversations.models import Conversation, ModelConfig, Policy, User, UserLimits
from tests.support import client_for, usage_account

pytestmark = pytest.mark.django_db


def admit(user: User, model: ModelConfig) -> None:
    with transaction.atomic():
        quota.admit(user, model, purpose="chat", prompt_tokens=10, max_tokens=10)


def test_a_spent_month_is_named_in_the_refusal_though_the_day_is_spent_too(
    alice: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_day=1000, tokens_per_month=1000)
    usage_account(alice, day_used=1000, month_used=1000)
    with pytest.raises(QuotaExceeded) as refused:
        admit(alice, chat_model)
    next_month = quota.periods_at(timezone.now()).next_month
    assert refused.value.extra == {"period": "month", "resets_at": next_month.isoformat()}
    assert "monthly limit of 1,000 tokens" in refused.value.message


def test_a_spent_day_is_named_rather_than_the_minute(alice: User, chat_model: ModelConfig) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_day=100, requests_per_minute=1)
    usage_account(alice, day_used=100)
    alice_account = quota.UsageAccount.objects.get(user=alice)
    alice_account.minute_used = 1
    alice_account.save()
    with pytest.raises(QuotaExceeded) as refused:  # not RateLimited: a minute would not do
        admit(alice, chat_model)
    assert refused.value.extra["period"] == "day"


def test_the_warning_names_a_spent_month_over_a_day_at_85_percent(alice: User) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_day=1000, tokens_per_month=1000)
    usage_account(alice, day_used=850, month_used=1000)
    client = client_for(alice)
    warning = client.get("/usage/summary.json").json()["warning"]
    assert warning == "You have used all of this month's 1,000 tokens."
    assert warning in client.get("/usage/").content.decode().replace("&#x27;", "'")


def test_the_warning_names_a_spent_day_over_a_month_at_90_percent(alice: User) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_day=500, tokens_per_month=1000)
    usage_account(alice, day_used=500, month_used=900)
    warning = client_for(alice).get("/usage/summary.json").json()["warning"]
    assert warning == "You have used all of today's 500 tokens."


def test_the_warning_names_the_period_nearer_its_limit(alice: User) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_day=1000, tokens_per_month=1000)
    usage_account(alice, day_used=850, month_used=950)
    warning = client_for(alice).get("/usage/summary.json").json()["warning"]
    assert warning == "You have used 95% of this month's 1,000 tokens."


def test_the_conversation_page_names_a_spent_month_though_the_day_is_spent_too(
    alice: User, alice_conversation: Conversation
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_day=1000, tokens_per_month=1000)
    usage_account(alice, day_used=1000, month_used=1000)
    html = client_for(alice).get(f"/c/{alice_conversation.id}/").content.decode()
    match = re.search(r'<script id="page-data" type="application/json">(.*?)</script>', html, re.S)
    assert match
    assert "this month's tokens" in json.loads(match.group(1))["blocked"]
