"""Deleting an API key in the admin (its page, or "delete selected" on the list) is in the
audit log like its creation and revocation: who deleted which key, and what it was."""

from __future__ import annotations

import pytest

from conversations import api_keys
from conversations.models import ApiKey, AuditEntry, User
from tests.support import client_for

pytestmark = pytest.mark.django_db


def test_deleting_a_key_on_its_page_is_audited(staff: User, alice: User) -> None:
    key = api_keys.create_key(alice, name="laptop").key
    response = client_for(staff).post(
        f"/admin/conversations/apikey/{key.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert not ApiKey.objects.exists()
    entry = AuditEntry.objects.get(action="delete")
    assert (entry.actor, entry.target_type, entry.target_id) == (staff, "apikey", str(key.pk))
    assert entry.before["name"] == "laptop" and entry.before["user"] == alice.pk
    assert entry.after is None


def test_deleting_keys_from_the_list_audits_each(staff: User, alice: User, bob: User) -> None:
    keys = [api_keys.create_key(alice, name="a").key, api_keys.create_key(bob, name="b").key]
    response = client_for(staff).post(
        "/admin/conversations/apikey/",
        {
            "action": "delete_selected",
            "_selected_action": [str(k.pk) for k in keys],
            "post": "yes",
        },
    )
    assert response.status_code == 302
    assert not ApiKey.objects.exists()
    deleted = AuditEntry.objects.filter(action="delete", target_type="apikey")
    assert sorted(e.target_id for e in deleted) == sorted(str(k.pk) for k in keys)
    assert all(e.actor == staff for e in deleted)
