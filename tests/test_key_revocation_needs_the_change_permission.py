"""Revoking keys from the admin's list is a change: staff who may only view keys (the
"view API key" permission) see the list but cannot revoke; with "change API key" they can."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from conversations import api_keys
from conversations.models import ApiKey, AuditEntry, User
from tests.support import client_for

pytestmark = pytest.mark.django_db

LIST = "/admin/conversations/apikey/"


def clerk_with(*codenames: str) -> User:
    clerk = User.objects.create_user("clerk", password="x", is_staff=True)
    clerk.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return clerk


def revoke(client: object, key: ApiKey) -> None:
    client.post(LIST, {"action": "revoke", "_selected_action": [str(key.pk)]})  # type: ignore[attr-defined]


def test_staff_who_may_only_view_keys_cannot_revoke_them(alice: User) -> None:
    key = api_keys.create_key(alice, name="laptop").key
    client = client_for(clerk_with("view_apikey"))
    revoke(client, key)
    key.refresh_from_db()
    assert key.revoked_at is None
    assert not AuditEntry.objects.filter(action="revoke").exists()
    listing = client.get(LIST)
    assert listing.status_code == 200
    assert "Revoke the selected keys" not in listing.content.decode()


def test_staff_who_may_change_keys_revoke_them(alice: User) -> None:
    key = api_keys.create_key(alice, name="laptop").key
    clerk = clerk_with("view_apikey", "change_apikey")
    revoke(client_for(clerk), key)
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEntry.objects.get(action="revoke").actor == clerk
