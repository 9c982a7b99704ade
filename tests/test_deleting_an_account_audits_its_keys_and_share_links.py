"""Deleting an account in the admin (its page, or "delete selected" on the list) deletes its API
keys and the share links of its conversations with it, and each is in the audit log as a
deletion, as when the key or the conversation is deleted on its own page: who deleted it and
what it was. Before, only the account and its limits were: its keys and links went without a
word. The teams it leaves each get a change of their members, as on the team's page (before,
a membership went without a word too)."""

from __future__ import annotations

import pytest

from conversations import api_keys, sharing
from conversations.models import ApiKey, AuditEntry, Conversation, ShareLink, Team, User
from tests.support import client_for

pytestmark = pytest.mark.django_db


def deleted(target_type: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action="delete", target_type=target_type))


def test_deleting_an_account_on_its_page_records_its_keys_and_links(
    staff: User, alice: User, alice_conversation: Conversation
) -> None:
    key = api_keys.create_key(alice, name="laptop").key
    link, _ = sharing.create_share_link(alice, alice_conversation.pk)
    team = Team.objects.create(name="Ops")
    team.members.add(alice, staff)
    response = client_for(staff).post(
        f"/admin/conversations/user/{alice.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert not ApiKey.objects.exists() and not ShareLink.objects.exists()

    [key_entry] = deleted("apikey")
    assert (key_entry.actor, key_entry.target_id) == (staff, str(key.pk))
    assert key_entry.target_repr == str(key)  # "laptop (sk-team-…)"
    assert key_entry.before["name"] == "laptop" and key_entry.before["user"] == alice.pk
    assert key_entry.after is None
    [link_entry] = deleted("sharelink")
    assert (link_entry.actor, link_entry.target_id) == (staff, str(link.pk))
    assert link_entry.target_repr == "Link to Deploy notes"
    assert link_entry.before["conversation"] == str(alice_conversation.pk)
    assert link_entry.after is None
    [team_entry] = AuditEntry.objects.filter(target_type="team")
    assert (team_entry.action, team_entry.actor, team_entry.target_id) == (
        "change",
        staff,
        str(team.pk),
    )
    assert team_entry.before["members"] == sorted([alice.pk, staff.pk])
    assert team_entry.after["members"] == [staff.pk]


def test_deleting_accounts_from_the_list_records_each_ones_keys_and_links(
    staff: User, alice: User, bob: User, alice_conversation: Conversation
) -> None:
    keys = [api_keys.create_key(alice, name="a").key, api_keys.create_key(bob, name="b").key]
    link, _ = sharing.create_share_link(alice, alice_conversation.pk)
    response = client_for(staff).post(
        "/admin/conversations/user/",
        {
            "action": "delete_selected",
            "_selected_action": [str(alice.pk), str(bob.pk)],
            "post": "yes",
        },
    )
    assert response.status_code == 302
    assert not ApiKey.objects.exists() and not ShareLink.objects.exists()
    assert sorted(e.target_id for e in deleted("apikey")) == sorted(str(k.pk) for k in keys)
    assert [e.target_id for e in deleted("sharelink")] == [str(link.pk)]
    assert {e.actor for e in [*deleted("apikey"), *deleted("sharelink")]} == {staff}
