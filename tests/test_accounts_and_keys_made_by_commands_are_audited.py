"""What a management command changes is in the audit log, named as made by the command: the
superuser ``ensure_admin`` creates on first run (as an account created in the admin is: its
flags and that its password was set, never the password), and a key ``create_api_key`` makes
(by the command, not by the key's owner, who did nothing). The first was not recorded at all;
the second was recorded as made by the owner."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from conversations.models import ApiKey, AuditEntry, User

pytestmark = pytest.mark.django_db

PASSWORD = "the admin's first password 42"


def test_the_first_superuser_is_audited_as_created_by_the_command(settings: object) -> None:
    User.objects.filter(is_superuser=True).delete()
    settings.ADMIN_PASSWORD = PASSWORD  # type: ignore[attr-defined]
    call_command("ensure_admin", stdout=io.StringIO())
    admin = User.objects.get(username="admin")

    (entry,) = AuditEntry.objects.filter(target_type="user", target_id=str(admin.pk))
    assert (entry.action, entry.actor, entry.actor_name) == (
        "create",
        None,
        "manage.py ensure_admin",
    )
    assert entry.before is None
    assert entry.after == {
        "username": "admin",
        "is_active": True,
        "is_staff": True,
        "is_superuser": True,
        "groups": [],
        "user_permissions": [],
        "group_policies": [],
        "password": "set",
    }
    stored = json.dumps([entry.before, entry.after])
    assert PASSWORD not in stored and admin.password not in stored

    call_command("ensure_admin", stdout=io.StringIO())  # a superuser exists: nothing done
    assert AuditEntry.objects.count() == 1


def test_a_key_made_by_the_command_is_audited_as_made_by_it(alice: User) -> None:
    call_command("create_api_key", "alice", "--name", "ci", stdout=io.StringIO())
    key = ApiKey.objects.get(user=alice)
    (entry,) = AuditEntry.objects.filter(target_type="apikey", target_id=str(key.pk))
    assert (entry.action, entry.actor, entry.actor_name) == (
        "create",
        None,
        "manage.py create_api_key",
    )
    assert (entry.after["name"], entry.after["user"]) == ("ci", alice.pk)
