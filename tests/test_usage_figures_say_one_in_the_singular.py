"""Counts on the usage pages and in the dashboard's charts agree with their nouns: a limit of one
reply at once read "1 replies at once", and a day's one token from the cache "cache hit input 1
tokens"."""

from __future__ import annotations

import re

import pytest
from django.db import transaction
from django.utils import timezone

from conversations import quota
from conversations.models import ModelConfig, Policy, User, UserLimits
from tests.support import client_for, usage_account

pytestmark = pytest.mark.django_db


def test_the_usage_page_says_one_of_each_in_the_singular(alice: User) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(
        user=alice,
        tokens_per_day=1000,
        tokens_per_month=1000,
        max_output_tokens=1,
        requests_per_minute=1,
        concurrent_streams=1,
    )
    usage_account(alice, day_used=1, month_used=1)
    page = client_for(alice).get("/usage/").content.decode()
    figures = re.search(r'<dl class="usage-figures">(.*?)</dl>', page, re.S)
    assert figures
    text = re.sub(r"<[^>]+>", "", figures.group(1))
    assert "Today1 token of 1,000 · " in text
    assert "This month1 token of 1,000 · " in text
    assert "up to 1 output token · 1 request per minute · 1 reply at once" in text


def test_the_dashboard_says_one_of_each_in_the_singular(
    staff: User, alice: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    with transaction.atomic():
        record = quota.admit(alice, chat_model, purpose="chat", prompt_tokens=1, max_tokens=1)
    usage = {
        "prompt_tokens": 1,
        "completion_tokens": 0,
        "prompt_cache_hit_tokens": 1,
        "prompt_cache_miss_tokens": 0,
    }
    quota.settle(record.pk, outcome="complete", usage=usage)
    with transaction.atomic():  # a call running, its reservation shown apart
        quota.admit(alice, chat_model, purpose="chat", prompt_tokens=1, max_tokens=1)

    html = client_for(staff).get("/admin/usage/").content.decode()
    today = f"{timezone.localdate():%d %b}"
    assert f"<title>{today}: cache hit input 1 token</title>" in html
    assert f"<title>{today}: deepseek-chat 1 token</title>" in html
    totals = re.search(r'<p class="usage-totals">(.*?)</p>', html, re.S)
    assert totals and totals.group(1).startswith("1 call · 1 token · ")
    models_table = html[html.index("<h2>Models</h2>") :]
    assert "<td>1 token · $" in models_table
