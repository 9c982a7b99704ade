"""The owner's sharing page reads its links and how often each was opened in a fixed number
of queries, and a conversation has at most ``sharing.MAX_LIVE_LINKS`` live links. It counted
each link's openings with a query of its own, and an ordinary account could make any number of
links: after a few thousand (one POST each), every load of the page ran thousands of queries, a
lever on the database for any account."""

from __future__ import annotations

from typing import Any

import pytest

from conversations import sharing
from conversations.models import Conversation, ShareLink, User
from tests.support import client_for

pytestmark = pytest.mark.django_db


def test_the_sharing_page_does_not_query_once_per_link(
    alice: User, alice_conversation: Conversation, django_assert_max_num_queries: Any
) -> None:
    for _ in range(50):
        _, token = sharing.create_share_link(alice, alice_conversation.id)
        sharing.open_share_link(token, alice)
    client = client_for(alice)
    client.get(f"/c/{alice_conversation.id}/sharing/")  # sessions, caches: warmed up
    with django_assert_max_num_queries(20):
        page = client.get(f"/c/{alice_conversation.id}/sharing/")
    assert page.status_code == 200


def test_a_conversation_has_at_most_fifty_live_links(
    alice: User, alice_conversation: Conversation
) -> None:
    client = client_for(alice)
    create = f"/c/{alice_conversation.id}/sharing/links/"
    for _ in range(sharing.MAX_LIVE_LINKS):
        assert client.post(create).status_code == 200
    page = client.post(create)
    assert "at most 50 live share links" in page.content.decode()
    assert ShareLink.objects.filter(conversation=alice_conversation).count() == 50

    # A revoked link frees its place.
    first = ShareLink.objects.filter(conversation=alice_conversation).first()
    assert first is not None
    sharing.revoke_share_link(alice, first.pk)
    page = client.post(create)
    assert page.status_code == 200 and "at most" not in page.content.decode()
    assert ShareLink.objects.filter(conversation=alice_conversation).count() == 51
