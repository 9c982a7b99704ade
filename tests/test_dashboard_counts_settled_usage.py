"""A call still running holds a worst-case reservation and its prompt estimate, not usage: the
dashboard's charts, totals and ratios are of settled calls, and running ones are shown apart."""

from __future__ import annotations

import math
import re

import pytest
from django.db import transaction
from django.utils import timezone

from conversations import quota
from conversations.models import ModelConfig, Policy, User
from tests.support import client_for

pytestmark = pytest.mark.django_db


def spend(user: User, model: ModelConfig, hit: int, miss: int, completion: int) -> None:
    with transaction.atomic():
        record = quota.admit(
            user, model, purpose="chat", prompt_tokens=hit + miss, max_tokens=completion
        )
    usage = {
        "prompt_tokens": hit + miss,
        "completion_tokens": completion,
        "prompt_cache_hit_tokens": hit,
        "prompt_cache_miss_tokens": miss,
    }
    quota.settle(record.pk, outcome="complete", usage=usage)


def test_a_running_call_is_left_out_of_charts_and_ratios_and_shown_apart(
    staff: User, alice: User, bob: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    spend(alice, chat_model, hit=300, miss=100, completion=50)  # 75% from cache
    with transaction.atomic():  # bob's reply is streaming: reserved, not settled
        quota.admit(bob, chat_model, purpose="chat", prompt_tokens=10_000, max_tokens=4000)
    reserved = math.ceil(10_000 * quota.PROMPT_PADDING) + quota.PROMPT_SLACK + 4000

    html = client_for(staff).get("/admin/usage/").content.decode()
    totals = re.search(r'<p class="usage-totals">(.*?)</p>', html, re.S)
    assert totals
    assert "1 call · 450 tokens" in totals.group(1)
    assert "cache-hit ratio 75%" in totals.group(1)
    assert f"1 call running ({reserved:,} tokens reserved)" in totals.group(1)

    today = f"{timezone.localdate():%d %b}"
    # Each day's bar, as its segments' titles say: settled tokens only.
    assert f"<title>{today}: deepseek-chat 450 tokens</title>" in html
    assert f"<title>{today}: cache miss input 100 tokens</title>" in html
    assert f"<title>{today}: cache hit input 300 tokens</title>" in html
    models_table = html[html.index("<h2>Models</h2>") :]
    assert "<td>75%</td>" in models_table


@pytest.mark.parametrize(
    ("hit", "miss", "shown"),
    [(996, 4, "99.6%"), (9999, 1, "99.9%"), (1, 2999, "&lt;0.1%"), (300, 100, "75%")],
)
def test_a_cache_hit_ratio_is_never_rounded_to_all_or_nothing(
    staff: User, alice: User, chat_model: ModelConfig, hit: int, miss: int, shown: str
) -> None:
    """99.6 % read "100%", as if every input had come from the cache (and 0.03 % "0%")."""
    Policy.objects.all().delete()
    spend(alice, chat_model, hit=hit, miss=miss, completion=10)

    html = client_for(staff).get("/admin/usage/").content.decode()
    totals = re.search(r'<p class="usage-totals">(.*?)</p>', html, re.S)
    assert totals
    assert f"cache-hit ratio {shown} " in totals.group(1) + " "
    models_table = html[html.index("<h2>Models</h2>") :]
    assert f"<td>{shown}</td>" in models_table


def test_a_model_or_purpose_filter_says_what_the_users_columns_count(
    staff: User, alice: User, chat_model: ModelConfig
) -> None:
    """The users' tables count the filter's calls in their first columns, but today, this month
    and remaining are the user's whole allowance: said where a filter would make them look
    wrong (alice's 450 tokens of chat beside a "Tokens (period)" of 0 for titles)."""
    Policy.objects.all().delete()
    spend(alice, chat_model, hit=300, miss=100, completion=50)
    admin = client_for(staff)
    note = "today, this month and remaining are each user's whole allowance"

    assert note not in admin.get("/admin/usage/").content.decode().replace("&#x27;", "'")
    for query in (f"model={chat_model.pk}", "purpose=title", f"model={chat_model.pk}&purpose=api"):
        html = admin.get(f"/admin/usage/?{query}").content.decode().replace("&#x27;", "'")
        assert note in html, query
