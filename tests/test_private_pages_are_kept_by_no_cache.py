"""A conversation's page and exports, the search, the team's and usage pages, and a share
link's page and transcript were sent with no Cache-Control (a link's with ``Vary: Cookie``
only): a caching proxy could keep serving a revoked link's transcript, and a browser's
back/forward cache show a conversation after signing out on a shared computer. Every such
response now says ``Cache-Control: private, no-store``; the static files keep their caching,
and pages that said no-store already keep what they said."""

from __future__ import annotations

import pytest
from django.test import Client

from conversations import sharing
from conversations.models import Conversation, Message, SharingSettings, User
from tests.support import client_for

pytestmark = pytest.mark.django_db


def test_a_users_pages_are_for_no_cache(alice: User, alice_conversation: Conversation) -> None:
    Message.objects.create(
        conversation=alice_conversation, role=Message.Role.USER, author=alice, content="Secret"
    )
    client = client_for(alice)
    c = f"/c/{alice_conversation.id}"
    for path in (
        f"{c}/",
        f"{c}/export.json",
        f"{c}/export.md",
        "/search/?q=Secret",
        "/team/",
        "/usage/",
        "/usage/summary.json",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response["Cache-Control"] == "private, no-store", path


def test_a_share_links_page_and_transcript_are_for_no_cache(
    alice: User, bob: User, alice_conversation: Conversation
) -> None:
    SharingSettings.objects.update_or_create(pk=1, defaults={"allow_public_links": True})
    _, token = sharing.create_share_link(alice, alice_conversation.id)
    for client in (Client(), client_for(bob)):
        for path in (f"/s/{token}/", f"/s/{token}/messages.json"):
            response = client.get(path)
            assert response.status_code == 200, path
            assert response["Cache-Control"] == "private, no-store", path


def test_static_files_and_pages_that_said_otherwise_keep_their_caching(
    alice: User, staff: User
) -> None:
    static = Client().get("/static/css/app.css")
    assert static.status_code == 200
    assert "no-store" not in static["Cache-Control"] and "max-age" in static["Cache-Control"]
    admin = client_for(staff).get("/admin/")
    assert admin["Cache-Control"] == "max-age=0, no-cache, no-store, must-revalidate, private"
    assert (
        client_for(alice).get("/")["Cache-Control"].endswith("no-store, must-revalidate, private")
    )
