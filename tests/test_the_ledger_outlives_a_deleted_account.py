"""An account that has chatted can be deleted in the admin, and its ledger stays: every past
total (the dashboard's, the export's) still counts its calls, under the name it had. The
delete was refused (403: its messages, read-only in the admin, were in the way), and had it
gone through, its ledger rows went with it and past totals dropped after the fact."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.db import transaction

from conversations import quota
from conversations.models import Conversation, Message, ModelConfig, Policy, UsageRecord, User
from tests.support import client_for, downloaded
from tests.test_dashboard_counts_settled_usage import spend

pytestmark = pytest.mark.django_db


def test_a_deleted_account_s_calls_stay_in_every_total(
    staff: User, alice: User, bob: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    chat = Conversation.objects.create(owner=bob, model=chat_model, title="Bob's notes")
    Message.objects.create(conversation=chat, role=Message.Role.USER, content="Hi")
    spend(alice, chat_model, hit=0, miss=100, completion=50)
    spend(bob, chat_model, hit=0, miss=200, completion=100)
    with transaction.atomic():  # bob's last call is still running when he is deleted
        running = quota.admit(bob, chat_model, purpose="chat", prompt_tokens=10, max_tokens=20)
    admin = client_for(staff)
    page = admin.get("/admin/usage/")
    before = page.content.decode()
    assert page.status_code == 200, before[:3000]
    assert "2 calls · 450 tokens" in before, re.findall(r"usage-totals.{0,200}", before)

    response = admin.post(f"/admin/conversations/user/{bob.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not User.objects.filter(username="bob").exists()
    assert not Conversation.objects.filter(pk=chat.pk).exists()  # his own go with him

    assert UsageRecord.objects.count() == 3
    assert set(UsageRecord.objects.filter(user=None).values_list("username", flat=True)) == {"bob"}
    # The running call still settles (nothing to release it against any more).
    quota.settle(running.pk, outcome="complete", usage=None, output_text="fine")

    after = admin.get("/admin/usage/").content.decode()
    running.refresh_from_db()
    settled = 450 + running.total_tokens
    assert f"3 calls · {settled} tokens" in after, re.findall(r"usage-totals.{0,200}", after)
    export = admin.get("/admin/usage/export.csv")
    rows = list(csv.DictReader(io.StringIO(downloaded(export))))
    assert sorted(r["user"] for r in rows) == ["alice", "bob (deleted)", "bob (deleted)"]
    ledger = admin.get("/admin/conversations/usagerecord/").content.decode()
    assert "bob (deleted)" in ledger


def test_the_dashboard_says_what_deleted_accounts_used(
    staff: User, alice: User, bob: User, chat_model: ModelConfig
) -> None:
    """The totals count a deleted account's calls, and no row of the users' table does: the
    dashboard says so under the table, with their calls, tokens and cost, so that the rows add
    up to the totals. Before, 450 tokens in the totals were 150 in the only row."""
    Policy.objects.all().delete()
    spend(alice, chat_model, hit=0, miss=100, completion=50)
    spend(bob, chat_model, hit=0, miss=200, completion=100)
    admin = client_for(staff)
    assert "Accounts deleted since" not in admin.get("/admin/usage/").content.decode()
    assert (
        admin.post(f"/admin/conversations/user/{bob.pk}/delete/", {"post": "yes"}).status_code
        == 302
    )

    page = admin.get("/admin/usage/").content.decode()
    assert "2 calls · 450 tokens" in page
    (said,) = re.findall(r"Accounts deleted since: [^<]*", page)
    assert said.startswith("Accounts deleted since: 1 call · 300 tokens · $"), said
    # A filter on a user or a group leaves them out, as it does of the totals.
    filtered = admin.get(f"/admin/usage/?user={alice.pk}").content.decode()
    assert "Accounts deleted since" not in filtered
