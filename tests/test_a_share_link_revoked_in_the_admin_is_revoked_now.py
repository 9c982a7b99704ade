"""A share link's "revoked at", set in the admin, cannot lie in the future: any value revokes
the link at once, so a future one showed "revoked at <tomorrow>" on a link already dead (an
admin who meant "end it then" has the expiry for that)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from conversations import access
from conversations.models import Conversation, ShareLink, User
from conversations.sharing import create_share_link
from tests.support import admin_form, client_for

pytestmark = pytest.mark.django_db


def page(link: ShareLink) -> str:
    return f"/admin/conversations/sharelink/{link.pk}/change/"


def moment(when: datetime) -> dict[str, str]:
    local = timezone.localtime(when)
    return {"revoked_at_0": f"{local:%Y-%m-%d}", "revoked_at_1": f"{local:%H:%M:%S}"}


def test_a_revocation_in_the_future_is_refused_and_the_link_lives_on(
    staff: User, alice: User, alice_conversation: Conversation
) -> None:
    link, token = create_share_link(alice, alice_conversation.id)
    client = client_for(staff)
    tomorrow = timezone.now() + timedelta(days=1)
    response = client.post(page(link), admin_form(client, page(link), **moment(tomorrow)))
    assert response.status_code == 200  # the form again, with the error
    assert "A link is revoked as soon as this is set" in response.content.decode()
    link.refresh_from_db()
    assert link.revoked_at is None
    assert access.access_shared_link(token) == link


def test_a_revocation_now_or_earlier_is_saved_and_ends_the_link(
    staff: User, alice: User, alice_conversation: Conversation
) -> None:
    link, token = create_share_link(alice, alice_conversation.id)
    client = client_for(staff)
    earlier = timezone.now() - timedelta(minutes=5)
    response = client.post(page(link), admin_form(client, page(link), **moment(earlier)))
    assert response.status_code == 302, response.content.decode()[:3000]
    link.refresh_from_db()
    assert link.revoked_at is not None
    with pytest.raises(ShareLink.DoesNotExist):
        access.access_shared_link(token)
