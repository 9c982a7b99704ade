"""The owner's sharing page reads its links and how often each was opened in a fixed number
of queries. It counted each link's openings with a query of its own, and an ordinary account may
make any number of links: after a few thousand (one POST each), every load of the page ran
thousands of queries, a lever on the database for any account."""

from __future__ import annotations

from typing import Any

import pytest

from conversations import sharing
from conversations.models import Conversation, User
from tests.support import client_for

pytestmark = pytest.mark.django_db


@pytest.mark.xfail(
    strict=True,
    reason="sharing_views.sharing_page: link.opens.count() per link; annotate Count('opens')",
)
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
