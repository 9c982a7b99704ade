"""The audit log says who acted even after that account is deleted: each entry keeps the
actor's name (``actor_name``), shown in the log and its CSV export; entries written before the
name was kept get their actor's name from the migration that added it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from conversations.models import AuditEntry, Policy, User
from tests.support import client_for, downloaded


@pytest.mark.django_db
def test_an_entry_still_names_its_actor_after_the_account_is_deleted(staff: User) -> None:
    admin = User.objects.create_superuser("root", password="x" * 20)
    moderator = User.objects.create_user("moderator", is_staff=True, password="x" * 20)
    moderator.user_permissions.set(
        Permission.objects.filter(codename__in=["add_policy", "view_policy"])
    )
    response = client_for(moderator).post(
        "/admin/conversations/policy/add/",
        {"name": "interns", "tokens_per_day": "1000", "all_models": "on", "api_access": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = AuditEntry.objects.get(target_type="policy", action="create")
    assert entry.actor == moderator and entry.actor_name == "moderator"

    client_for(admin).post(f"/admin/conversations/user/{moderator.pk}/delete/", {"post": "yes"})
    assert not User.objects.filter(username="moderator").exists()
    entry.refresh_from_db()
    assert entry.actor is None and entry.actor_name == "moderator"
    assert Policy.objects.filter(name="interns").exists()

    root = client_for(admin)
    listing = root.get("/admin/conversations/auditentry/?q=moderator").content.decode()
    assert "interns" in listing  # found by the name, and listed with it
    export = root.post(
        "/admin/conversations/auditentry/",
        {"action": "export_csv", "_selected_action": [str(entry.pk)]},
    )
    [row] = list(csv.DictReader(io.StringIO(downloaded(export))))
    assert row["actor"] == "moderator" and row["target"] == "interns"


BEFORE = ("conversations", "0013_prices_are_never_negative")
NAMED = ("conversations", "0014_audit_keeps_the_actors_name")


@pytest.fixture
def latest_after() -> Iterator[None]:
    """Whatever the test does to the schema, later tests find it fully migrated."""
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("conversations")
    yield
    MigrationExecutor(connection).migrate(latest)


@pytest.mark.django_db(transaction=True)
def test_the_migration_names_the_actors_of_older_entries(latest_after: None) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    old = executor.loader.project_state([BEFORE]).apps
    user = old.get_model("conversations", "User").objects.create(username="ada")
    entry = old.get_model("conversations", "AuditEntry")
    acted = entry.objects.create(actor=user, action="add", target_type="policy", target_id="1")
    nobody = entry.objects.create(action="add", target_type="policy", target_id="2")

    executor = MigrationExecutor(connection)
    executor.migrate([NAMED])
    new = executor.loader.project_state([NAMED]).apps.get_model("conversations", "AuditEntry")
    assert new.objects.get(pk=acted.pk).actor_name == "ada"
    assert new.objects.get(pk=nobody.pk).actor_name == ""
