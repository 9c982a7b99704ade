"""The audit log's CSV export gives each entry's before and after as JSON, as the log keeps
them, so that any tool can read them back (Python's repr wrote True, None and single quotes),
and what changed as the entry's page says it, related rows by name (the JSON names a user's
groups by id only)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.contrib.auth.models import Group

from conversations.models import AuditEntry, Policy, User
from tests.support import admin_form, client_for, downloaded

pytestmark = pytest.mark.django_db


def test_before_and_after_are_json_in_the_export(staff: User) -> None:
    client = client_for(staff)
    client.post(
        "/admin/conversations/policy/add/",
        {"name": "Interns", "all_models": "on", "tokens_per_day": "1000", "api_access": "on"},
    )
    policy = Policy.objects.get(name="Interns")
    entry = AuditEntry.objects.get(target_type="policy", target_id=str(policy.pk))

    export = client.post(
        "/admin/conversations/auditentry/",
        {"action": "export_csv", "_selected_action": [str(entry.pk)]},
    )
    (row,) = csv.DictReader(io.StringIO(downloaded(export)))
    assert row["before"] == ""  # a creation has no before
    after = json.loads(row["after"])
    assert after == entry.after
    assert after["tokens_per_day"] == 1000 and after["tokens_per_month"] is None
    assert after["is_default"] is False


def test_the_export_names_what_changed_as_the_entrys_page_does(staff: User, alice: User) -> None:
    client = client_for(staff)
    engineers = Group.objects.create(name="Engineers")
    page = f"/admin/conversations/user/{alice.pk}/change/"
    response = client.post(page, admin_form(client, page, groups=[str(engineers.pk)]))
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = AuditEntry.objects.filter(target_type="user", target_id=str(alice.pk)).latest("at")

    export = client.post(
        "/admin/conversations/auditentry/",
        {"action": "export_csv", "_selected_action": [str(entry.pk)]},
    )
    (row,) = csv.DictReader(io.StringIO(downloaded(export)))
    assert "groups: none -> Engineers" in row["changes"].split("; ")
    assert "\n" not in row["changes"]  # one line a row
    assert json.loads(row["after"])["groups"] == [engineers.pk]  # the JSON as stored
