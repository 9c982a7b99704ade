"""The audit log, which staff read and export, names an API key or a share link by its other
fields — a key's name, prefix, owner, expiry and revocation; a link's conversation, creator,
expiry and revocation — never by the hash of its secret, whatever the change (created,
switched, revoked, deleted with its account) and wherever it was made. Entries written before
lose those hashes in migration 0026, and nothing else of theirs changes.

Before, every entry of a key or a link kept the hash of its secret in its before and after,
shown on the entry's page and written to the CSV export: a leaked key could be matched to its
owner, and a guess of a secret tested, by anyone who read the log."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations import api_keys, sharing
from conversations.models import AuditEntry, Conversation, User
from tests.support import client_for, downloaded
from tests.test_usage_totals_survive_the_account_migration import latest_after, migrate_to

__all__ = ["latest_after"]  # a fixture, used by name

AUDIT = "/admin/conversations/auditentry/"
BEFORE = ("conversations", "0025_a_taken_back_call_holds_its_worst_case")
FORGOTTEN = ("conversations", "0026_the_audit_log_keeps_no_secrets_hashes")


@pytest.mark.django_db
def test_no_entry_of_a_key_or_a_link_holds_its_hash(
    staff: User, alice: User, alice_conversation: Conversation
) -> None:
    owner = client_for(alice)
    new = api_keys.create_key(alice, name="laptop", expires_at=timezone.now() + timedelta(days=30))
    key = new.key
    owner.post(f"/settings/api-keys/{key.pk}/history/", {"save_history": "on"})
    owner.post(f"/settings/api-keys/{key.pk}/revoke/")
    link, _ = sharing.create_share_link(alice, alice_conversation.pk, expires_in_days=7)
    sharing.revoke_share_link(alice, link.pk)
    other_link, _ = sharing.create_share_link(alice, alice_conversation.pk)
    admin = client_for(staff)
    deleted = admin.post(f"/admin/conversations/user/{alice.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302

    entries = list(AuditEntry.objects.filter(target_type__in=("apikey", "sharelink")))
    assert sorted((e.target_type, e.action) for e in entries) == [
        ("apikey", "change"),
        ("apikey", "create"),
        ("apikey", "delete"),
        ("apikey", "revoke"),
        ("sharelink", "delete"),
        ("sharelink", "delete"),
        ("sharelink", "link_create"),
        ("sharelink", "link_create"),
        ("sharelink", "link_revoke"),
    ]
    for entry in entries:
        for side in (entry.before, entry.after):
            assert side is None or "hashed" not in side, (entry.action, side)
    # They still say which key it was, whose, until when, and since when revoked.
    [revoked] = [e for e in entries if e.action == "revoke"]
    assert {k: revoked.after[k] for k in ("name", "prefix", "user")} == {
        "name": "laptop",
        "prefix": key.prefix,
        "user": alice.pk,
    }
    assert revoked.after["expires_at"] and revoked.after["revoked_at"]
    assert revoked.before["revoked_at"] is None
    [link_revoked] = [e for e in entries if e.action == "link_revoke"]
    assert link_revoked.after["conversation"] == str(alice_conversation.pk)
    assert link_revoked.after["created_by"] == alice.pk
    assert link_revoked.after["expires_at"] and link_revoked.after["revoked_at"]

    # Neither the entries' pages nor the export show a hash.
    hashes = [key.hashed, link.hashed, other_link.hashed]
    export = admin.post(
        AUDIT, {"action": "export_csv", "_selected_action": [str(e.pk) for e in entries]}
    )
    exported = downloaded(export)
    assert len(list(csv.DictReader(io.StringIO(exported)))) == len(entries)
    pages = [admin.get(f"{AUDIT}{e.pk}/change/").content.decode() for e in entries]
    for text in [exported, *pages]:
        assert "laptop" in text or "Link to" in text
        assert not any(digest in text for digest in hashes)


@pytest.mark.django_db(transaction=True)
def test_the_migration_takes_the_hashes_out_of_older_entries(latest_after: None) -> None:
    old = migrate_to(BEFORE).get_model("conversations", "AuditEntry")
    key_before = {"name": "ci", "prefix": "sk-team-ab", "hashed": "a" * 64, "revoked_at": None}
    key_after = {**key_before, "revoked_at": "2026-11-20T10:00:00Z"}
    link_after = {"conversation": "c0ffee", "created_by": 3, "hashed": "b" * 64}
    written = {
        "key": old.objects.create(
            action="revoke",
            target_type="apikey",
            target_id="1",
            target_repr="ci (sk-team-ab…)",
            before=key_before,
            after=key_after,
        ),
        "link": old.objects.create(
            action="link_create",
            target_type="sharelink",
            target_id="2",
            target_repr="Link to Notes",
            before=None,
            after=link_after,
        ),
        # Not a key's or a link's: left as it is, whatever its fields are called.
        "policy": old.objects.create(
            action="change",
            target_type="policy",
            target_id="3",
            target_repr="Interns",
            before={"name": "Interns", "hashed": "kept"},
            after={"name": "Staff", "hashed": "kept"},
        ),
    }

    new = migrate_to(FORGOTTEN).get_model("conversations", "AuditEntry")
    key, link, policy = (new.objects.get(pk=written[name].pk) for name in written)
    assert (key.before, key.after) == (
        {k: v for k, v in key_before.items() if k != "hashed"},
        {k: v for k, v in key_after.items() if k != "hashed"},
    )
    assert (link.before, link.after) == (None, {"conversation": "c0ffee", "created_by": 3})
    assert (policy.before, policy.after) == (written["policy"].before, written["policy"].after)
    for name, entry in (("key", key), ("link", link), ("policy", policy)):
        assert (entry.action, entry.target_id, entry.target_repr, entry.at) == (
            written[name].action,
            written[name].target_id,
            written[name].target_repr,
            written[name].at,
        )
    assert json.dumps(key.after).count("sk-team-ab") == 1  # the prefix stays
