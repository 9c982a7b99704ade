"""The sign-in page a share link sends an anonymous viewer to (public links off) carries the
link's token in its address (``?next=/s/<token>/``): like the link's own page, it has its
requests name only our origin in their Referer. With the site's ``same-origin`` policy its
style and script requests named the whole address, token included, and a proxy's access log
(nginx's default format) wrote it down."""

from __future__ import annotations

import pytest
from django.test import Client

from conversations import sharing
from conversations.models import Conversation, User

pytestmark = pytest.mark.django_db


def test_the_sign_in_page_a_link_leads_to_sends_only_the_origin(
    alice: User, alice_conversation: Conversation
) -> None:
    _, token = sharing.create_share_link(alice, alice_conversation.id)
    client = Client()
    link_page = client.get(f"/s/{token}/")
    assert link_page.status_code == 302  # public links are off: sign in first
    sign_in = client.get(link_page["Location"])
    assert token in sign_in.request["QUERY_STRING"]
    assert sign_in.status_code == 200
    assert sign_in["Referrer-Policy"] == "strict-origin"

    # Shown again after a failed attempt, the page still does.
    again = client.post(
        link_page["Location"], {"username": "alice", "password": "not her password"}
    )
    assert again.status_code == 200
    assert again["Referrer-Policy"] == "strict-origin"
