"""A limit of 0 is a limit (nothing may be spent), never shown as "no limit". (An output cap
is at least 1 token: tests/test_an_output_cap_is_at_least_one.py.)"""

from __future__ import annotations

import pytest
from django.db import transaction

from conversations import quota
from conversations.errors import QuotaExceeded
from conversations.models import ModelConfig, Policy, User, UserLimits
from tests.support import client_for

pytestmark = pytest.mark.django_db


def test_a_user_with_a_daily_limit_of_0_is_told_so(alice: User, chat_model: ModelConfig) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(
        user=alice, tokens_per_day=0, max_output_tokens=1, requests_per_minute=0
    )
    with pytest.raises(QuotaExceeded), transaction.atomic():
        quota.admit(alice, chat_model, purpose="chat", prompt_tokens=1, max_tokens=1)
    client = client_for(alice)
    page = client.get("/usage/").content.decode()
    assert "no daily limit" not in page and "0 tokens of 0 · 0 left" in page
    assert "no output cap" not in page and "up to 1 output token " in page
    assert "0 requests per minute" in page
    summary = client.get("/usage/summary.json").json()
    assert (summary["today"]["left"], summary["remaining"]) == (0, 0)
    assert summary["warning"] == "Your limit for today is 0 tokens."


def test_the_dashboard_shows_a_monthly_limit_of_0(
    staff: User, alice: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    with transaction.atomic():
        record = quota.admit(alice, chat_model, purpose="chat", prompt_tokens=10, max_tokens=10)
    quota.settle(record.pk, outcome="complete", usage={"prompt_tokens": 10, "completion_tokens": 5})
    UserLimits.objects.create(user=alice, tokens_per_month=0)
    used = quota.usage_summary(alice)["month"]["used"]
    html = client_for(staff).get("/admin/usage/").content.decode()
    assert f"<td>{used} / 0</td>" in html
