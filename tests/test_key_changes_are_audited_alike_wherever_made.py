"""Every change to an API key is one kind of entry in the audit log, whoever makes it and
wherever: created (on the keys page, by ``create_api_key``), "save to history" switched,
revoked by its owner or by staff from the admin's list, deleted in the admin. Each names the
key as the admin's other entries do (target type ``apikey``) and holds its before and after.

Before, a key's creation and its owner's revocation were entries of another target type
(``api_key``, actions ``api_key.create`` and ``api_key.revoke``) than the admin's revocations
and deletions (``apikey``): filtering the log by one type showed half of a key's history. The
owner's revocation had no "after" and named no field changed; switching "save to history"
(whether the key's calls are recorded as conversations) was not audited at all; and the
admin's revocation was a rule of its own (read, set, save) beside the owner's."""

from __future__ import annotations

import pytest

from conversations import api_keys, audit
from conversations.models import ApiKey, AuditEntry, User
from tests.support import client_for

pytestmark = pytest.mark.django_db

PAGE = "/settings/api-keys/"
ADMIN_LIST = "/admin/conversations/apikey/"


def entries() -> list[tuple[str, str, str, list[str]]]:
    """The log's entries, oldest first: actor, action, target type, fields changed."""
    return [
        (e.actor_name, e.action, e.target_type, audit.changed_fields(e.before, e.after))
        for e in AuditEntry.objects.order_by("at", "pk")
    ]


def test_a_keys_history_is_one_kind_of_entry_with_before_and_after(
    alice: User, staff: User
) -> None:
    owner, admin = client_for(alice), client_for(staff)
    assert owner.post(PAGE, {"name": "laptop"}).status_code == 201
    assert owner.post(PAGE, {"name": "ci"}).status_code == 201
    laptop, ci = ApiKey.objects.get(name="laptop"), ApiKey.objects.get(name="ci")
    owner.post(f"{PAGE}{laptop.pk}/history/", {"save_history": "on"})
    owner.post(f"{PAGE}{laptop.pk}/history/", {"save_history": "on"})  # no change: no entry
    owner.post(f"{PAGE}{laptop.pk}/revoke/")
    admin.post(ADMIN_LIST, {"action": "revoke", "_selected_action": [str(ci.pk)]})
    admin.post(ADMIN_LIST, {"action": "revoke", "_selected_action": [str(laptop.pk)]})

    created = audit.changed_fields(None, audit.snapshot(laptop))
    assert entries() == [
        ("alice", "create", "apikey", created),
        ("alice", "create", "apikey", created),
        ("alice", "change", "apikey", ["save_history"]),
        ("alice", "revoke", "apikey", ["revoked_at"]),
        ("sam", "revoke", "apikey", ["revoked_at"]),  # the one already revoked: no entry
    ]
    assert {e.target_id for e in AuditEntry.objects.all()} == {str(laptop.pk), str(ci.pk)}
    revoked = AuditEntry.objects.filter(action="revoke", target_id=str(laptop.pk)).get()
    laptop.refresh_from_db()
    assert revoked.before["revoked_at"] is None
    assert revoked.after["revoked_at"] == audit.snapshot(laptop)["revoked_at"]  # type: ignore[index]
    # The admin's list filter offers the one target type.
    listing = admin.get("/admin/conversations/auditentry/").content.decode()
    assert "?target_type=apikey" in listing and "?target_type=api_key" not in listing


def test_a_key_made_by_the_command_or_for_someone_names_who_made_it(
    alice: User, staff: User
) -> None:
    key = api_keys.create_key(alice, name="for alice", actor=staff).key
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.target_type, entry.target_id) == (
        staff,
        "create",
        "apikey",
        str(key.pk),
    )
    assert entry.before is None
    assert (entry.after["name"], entry.after["user"]) == ("for alice", alice.pk)
    assert "hashed" not in entry.after  # nor the secret's hash (tests/test_the_audit_log_…)
