"""The ledger's and the audit log's CSV exports give times in the deployment's time zone
(TIME_ZONE), offset included: the day a row is dated is the day the dashboard and the limits
count it in (in UTC, an evening call far west or a morning one far east had another date)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from conversations import quota
from conversations.models import AuditEntry, ModelConfig, Policy, UsageRecord, User
from tests.support import client_for, downloaded

pytestmark = pytest.mark.django_db

# Fourteen hours ahead of UTC: for most of the day its date is not UTC's.
FAR_EAST = "Pacific/Kiritimati"


def rows(response: object) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(downloaded(response))))


def test_the_ledger_export_dates_calls_in_the_deployments_time_zone(
    settings: object, staff: User, alice: User, chat_model: ModelConfig
) -> None:
    settings.TIME_ZONE = FAR_EAST  # type: ignore[attr-defined]
    Policy.objects.all().delete()
    with transaction.atomic():
        record = quota.admit(alice, chat_model, purpose="chat", prompt_tokens=10, max_tokens=10)
    quota.settle(record.pk, outcome="complete", usage={"prompt_tokens": 10, "completion_tokens": 5})
    created = UsageRecord.objects.get(pk=record.pk).created_at

    (row,) = rows(client_for(staff).get("/admin/usage/export.csv"))
    exported = datetime.fromisoformat(row["created_at"])
    assert exported == created
    assert exported.utcoffset() == timedelta(hours=14)
    assert exported.date() == timezone.localtime(created).date()


def test_the_audit_export_dates_entries_in_the_deployments_time_zone(
    settings: object, staff: User
) -> None:
    settings.TIME_ZONE = FAR_EAST  # type: ignore[attr-defined]
    client = client_for(staff)
    client.post(
        "/admin/conversations/policy/add/",
        {"name": "Interns", "all_models": "on", "api_access": "on"},
    )
    entry = AuditEntry.objects.get(target_type="policy")

    export = client.post(
        "/admin/conversations/auditentry/",
        {"action": "export_csv", "_selected_action": [str(entry.pk)]},
    )
    (row,) = rows(export)
    exported = datetime.fromisoformat(row["at"])
    assert exported == entry.at and exported.utcoffset() == timedelta(hours=14)
