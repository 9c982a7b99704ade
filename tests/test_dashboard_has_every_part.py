"""The dashboard has what the issue asks for: tokens and cost per day stacked by model, the
models with today and this month, the top users, and every user with today, this month and
what is left (paginated)."""

from __future__ import annotations

import re

import pytest
from django.db import transaction
from django.utils import timezone

from conversations import quota
from conversations.models import ModelConfig, Policy, UsageRecord, User, UserLimits
from tests.support import client_for

pytestmark = pytest.mark.django_db


def spend(user: User, model: ModelConfig, miss: int, completion: int) -> None:
    with transaction.atomic():
        # Admitted for at least 1 output token (no call is admitted for less).
        record = quota.admit(
            user, model, purpose="chat", prompt_tokens=miss, max_tokens=max(completion, 1)
        )
    usage = {
        "prompt_tokens": miss,
        "completion_tokens": completion,
        "prompt_cache_miss_tokens": miss,
    }
    quota.settle(record.pk, outcome="complete", usage=usage)


def section(html: str, heading: str) -> str:
    start = html.index(f"<h2>{heading}</h2>")
    end = html.find("<h2>", start + 1)
    return html[start : end if end != -1 else len(html)]


def test_cost_per_day_is_charted_by_model(
    staff: User, alice: User, chat_model: ModelConfig, reasoner_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    spend(alice, chat_model, miss=1_000_000, completion=0)
    spend(alice, reasoner_model, miss=0, completion=1_000_000)
    html = client_for(staff).get("/admin/usage/").content.decode()
    assert "Cost per day by model" in html
    today = f"{timezone.localdate():%d %b}"
    chat_cost = UsageRecord.objects.get(model=chat_model).cost
    reasoner_cost = UsageRecord.objects.get(model=reasoner_model).cost
    assert f"<title>{today}: deepseek-chat ${chat_cost:,.4f}</title>" in html
    assert f"<title>{today}: deepseek-reasoner ${reasoner_cost:,.4f}</title>" in html


def test_the_models_table_has_today_and_this_month(
    staff: User, alice: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    spend(alice, chat_model, miss=100, completion=50)
    # A call of yesterday (or of last month, on the 1st): in the period, not today.
    spend(alice, chat_model, miss=1000, completion=0)
    older = UsageRecord.objects.filter(prompt_tokens=1000)
    older.update(created_at=timezone.now() - timezone.timedelta(days=1))
    month_start = quota.periods_at(timezone.now()).month
    in_month = older.get().created_at >= month_start

    models = section(client_for(staff).get("/admin/usage/").content.decode(), "Models")
    assert "<th>Today</th>" in models and "<th>This month</th>" in models
    row = re.search(r"<tr><td>deepseek-chat</td>(.*?)</tr>", models, re.S)
    assert row
    cells = re.findall(r"<td>(.*?)</td>", row.group(1))
    month_tokens = "1,150" if in_month else "150"
    assert cells[:2] == ["2", "1,150"]  # calls and tokens in the period (thousands grouped)
    assert "150 tokens" in cells[-2] and f"{month_tokens} tokens" in cells[-1]


def test_every_user_is_listed_with_today_this_month_and_what_is_left(
    staff: User, alice: User, bob: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=bob, tokens_per_day=5000)
    spend(alice, chat_model, miss=100, completion=50)
    # More users than a page holds, none of whom used anything.
    User.objects.bulk_create(User(username=f"user{n:03}") for n in range(60))
    client = client_for(staff)
    html = client.get("/admin/usage/").content.decode()
    top = section(html, "Top users")
    assert "<td>alice</td>" in top and "<td>bob</td>" not in top  # only who used tokens
    everyone = section(html, "All users")
    assert "<td>alice</td>" in everyone
    assert re.search(r"<td>bob</td>.*?<td>0 / 5,000</td>.*?<td>5,000</td>", everyone, re.S)
    assert "<td>user001</td>" in everyone and "page 1 of 2" in everyone
    second = section(client.get("/admin/usage/?days=30&page=2").content.decode(), "All users")
    assert "<td>user059</td>" in second and "<td>alice</td>" not in second
    assert 'value="30" selected' in client.get("/admin/usage/?days=30&page=2").content.decode()


def test_the_users_tables_cost_the_same_queries_for_five_users_or_fifty(
    staff: User, alice: User, bob: User, chat_model: ModelConfig
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    UserLimits.objects.create(user=bob, tokens_per_day=5000)
    spend(alice, chat_model, miss=100, completion=50)
    client = client_for(staff)
    client.get("/admin/usage/")  # the session and the caches, once

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/admin/usage/").status_code == 200
        return len(captured)

    few = queries()
    User.objects.bulk_create(User(username=f"user{n:03}") for n in range(45))
    for user in User.objects.filter(username__startswith="user")[:20]:
        spend(user, chat_model, miss=10, completion=5)
    assert queries() == few
