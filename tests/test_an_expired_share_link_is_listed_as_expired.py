"""An expired share link was listed on the sharing page as if live ("expires <date> · opened 0
times" and a Revoke button), though it opens nothing. Now it says it expired, as the keys page
says of an expired key, and offers no Revoke; a live link still does."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations import sharing
from conversations.models import Conversation, ShareLink, User
from tests.support import client_for

pytestmark = pytest.mark.django_db


def test_the_sharing_page_says_which_links_expired(
    alice: User, alice_conversation: Conversation
) -> None:
    ended, _ = sharing.create_share_link(alice, alice_conversation.id, expires_in_days=1)
    ShareLink.objects.filter(pk=ended.pk).update(expires_at=timezone.now() - timedelta(hours=1))
    live, _ = sharing.create_share_link(alice, alice_conversation.id, expires_in_days=7)

    page = client_for(alice).get(f"/c/{alice_conversation.id}/sharing/").content.decode()
    # Newest first: the live link, then the expired one.
    live_item, expired_item = re.findall(r"<li>Created.*?</li>", page, re.S)
    assert ", expired " in expired_item and "· expired" in expired_item
    assert "Revoke" not in expired_item
    assert ", expires " in live_item and "expired" not in live_item
    assert f"/links/{live.pk}/revoke/" in live_item
