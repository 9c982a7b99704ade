"""A share link that ended (revoked by its owner, or expired) cannot be brought back in the
admin: its "Revoked at" and "Expires at" are read-only there, as a revoked key's are. Before,
an admin clearing "Revoked at" (or moving an expiry past) opened the link again for everyone
who kept it, and its owner's sharing page listed it as live again without a word. A live link
is still revoked, or given a new expiry, in the admin."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from conversations import sharing
from conversations.admin import ShareLinkForm
from conversations.models import Conversation, ShareLink, User
from tests.support import admin_form, client_for

pytestmark = pytest.mark.django_db


def page(link: ShareLink) -> str:
    return f"/admin/conversations/sharelink/{link.pk}/change/"


def test_a_revoked_link_is_not_opened_again_by_clearing_its_revocation(
    staff: User, alice: User, charlie: User, alice_conversation: Conversation
) -> None:
    link, token = sharing.create_share_link(alice, alice_conversation.id)
    admin = client_for(staff)
    opened_before = admin_form(admin, page(link))  # the form, as opened while the link lived
    sharing.revoke_share_link(alice, link.pk)
    # Sent as it was opened (no revocation), then cleared outright.
    for form in (opened_before, {**opened_before, "revoked_at_0": "", "revoked_at_1": ""}):
        response = admin.post(page(link), form)
        assert response.status_code == 200  # the form again, saying why nothing was saved
        assert "an ended link stays ended: nothing was saved" in response.content.decode()
        link.refresh_from_db()
        assert link.revoked_at is not None
        assert client_for(charlie).get(f"/s/{token}/").status_code == 404
    shown = admin.get(page(link)).content.decode()
    assert 'name="revoked_at_0"' not in shown and 'name="expires_at_0"' not in shown


def test_an_expired_link_is_not_opened_again_by_moving_its_expiry(
    staff: User, alice: User, charlie: User, alice_conversation: Conversation
) -> None:
    link, token = sharing.create_share_link(alice, alice_conversation.id, expires_in_days=1)
    ShareLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    admin = client_for(staff)
    later = timezone.localtime(timezone.now() + timedelta(days=30))
    response = admin.post(
        page(link),
        {
            **admin_form(admin, page(link)),
            "expires_at_0": f"{later:%Y-%m-%d}",
            "expires_at_1": f"{later:%H:%M:%S}",
        },
    )
    assert response.status_code == 200
    assert "an ended link stays ended: nothing was saved" in response.content.decode()
    link.refresh_from_db()
    assert link.expires_at is not None and link.expires_at < timezone.now()
    assert client_for(charlie).get(f"/s/{token}/").status_code == 404


def test_a_live_links_expiry_is_still_changed_in_the_admin(
    staff: User, alice: User, charlie: User, alice_conversation: Conversation
) -> None:
    link, token = sharing.create_share_link(alice, alice_conversation.id, expires_in_days=1)
    admin = client_for(staff)
    later = timezone.localtime(timezone.now() + timedelta(days=30))
    form = admin_form(
        admin, page(link), expires_at_0=f"{later:%Y-%m-%d}", expires_at_1=f"{later:%H:%M:%S}"
    )
    assert admin.post(page(link), form).status_code == 302
    link.refresh_from_db()
    assert link.expires_at is not None and link.expires_at > timezone.now() + timedelta(days=29)
    assert client_for(charlie).get(f"/s/{token}/").status_code == 200


def test_a_link_revoked_while_its_admin_form_is_being_saved_stays_revoked(
    staff: User, alice: User, charlie: User, alice_conversation: Conversation, monkeypatch: Any
) -> None:
    """The owner revokes the link after the admin's save read it (live: its dates editable)
    and before it writes: the save keeps the revocation."""
    link, token = sharing.create_share_link(alice, alice_conversation.id)
    admin = client_for(staff)
    form = admin_form(admin, page(link))
    checked = ShareLinkForm.clean

    def owner_revokes_meanwhile(self: ShareLinkForm) -> Any:
        cleaned = checked(self)
        sharing.revoke_share_link(alice, link.pk)
        return cleaned

    monkeypatch.setattr(ShareLinkForm, "clean", owner_revokes_meanwhile)
    assert admin.post(page(link), form).status_code == 302
    link.refresh_from_db()
    assert link.revoked_at is not None
    assert client_for(charlie).get(f"/s/{token}/").status_code == 404


def test_a_new_expiry_for_a_link_that_ended_meanwhile_is_refused_not_dropped(
    staff: User, alice: User, charlie: User, alice_conversation: Conversation
) -> None:
    """The page was opened while the link lived (its dates editable); it expired before the
    admin saved a new expiry: the save says so, rather than "changed successfully" over a
    change it dropped."""
    link, token = sharing.create_share_link(alice, alice_conversation.id, expires_in_days=1)
    admin = client_for(staff)
    later = timezone.localtime(timezone.now() + timedelta(days=30))
    form = admin_form(
        admin, page(link), expires_at_0=f"{later:%Y-%m-%d}", expires_at_1=f"{later:%H:%M:%S}"
    )
    ShareLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    response = admin.post(page(link), form)
    assert response.status_code == 200  # the form again, with the refusal
    assert "an ended link stays ended: nothing was saved" in response.content.decode()
    link.refresh_from_db()
    assert link.expires_at is not None and link.expires_at < timezone.now()
    assert client_for(charlie).get(f"/s/{token}/").status_code == 404
