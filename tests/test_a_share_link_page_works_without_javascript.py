"""The page a share link opens is the transcript itself, server-rendered, for a browser without
JavaScript; its script (a module of our own origin, no inline code) upgrades it from that same
transcript (each message as the link's socket sends it, in its article) and the page's data (the
link's socket, where to read the messages again). The messages it reads
again when it catches up are what the link shows, read without logging another opening; and the
token stays out of every Referer and log line."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client

from conversations import sharing
from conversations.frames import link_message
from conversations.models import (
    Conversation,
    Message,
    ShareLinkOpen,
    SharingSettings,
    User,
)
from tests.support import client_for, shared_messages

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(alice: User, alice_conversation: Conversation) -> Conversation:
    question = Message.objects.create(
        conversation=alice_conversation,
        role="user",
        author=alice,
        content="Show me **code**",
    )
    answer = Message.objects.create(
        conversation=alice_conversation,
        parent=question,
        role="assistant",
        model=alice_conversation.model,
        content="```python\nprint(1)\n```",
        reasoning="The owner's private reasoning",
        status="complete",
    )
    Message.objects.create(
        conversation=alice_conversation,
        parent=answer,
        role="assistant",
        model=alice_conversation.model,
        content="Still going",
        status="streaming",
        seq=4,
    )
    return alice_conversation


def page_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script id="page-data" type="application/json">(.*?)</script>', html, re.S)
    assert match, html
    return json.loads(match.group(1))


def test_the_page_is_the_transcript_and_its_script_is_not_inline(
    alice: User, bob: User, conversation: Conversation
) -> None:
    _, token = sharing.create_share_link(alice, conversation.id)
    response = client_for(bob).get(f"/s/{token}/")
    assert response.status_code == 200
    html = response.content.decode()

    # Without JavaScript: every message, as written, and the reply still being written.
    assert html.count("<article") == 3
    # As written, its lines kept by the page's style (white-space: pre-wrap), not by <br>.
    assert '<div class="text">Show me **code**</div>' in html
    assert '<div class="text">```python\nprint(1)\n```</div>' in html
    assert "(still being written)" in html
    assert "Continue in my chats" in html

    # The script: a module from our origin; the CSP allows nothing inline.
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert all('src="/static/' in tag or 'type="application/json"' in tag for tag in scripts)
    assert '<script type="module" src="/static/js/shared.js">' in html
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    # Its requests (scripts, styles) name the page's origin, not its address with the token.
    assert response["Referrer-Policy"] == "strict-origin"

    data = page_data(html)
    assert data["socket_path"] == f"/ws/conversations/{conversation.id}/?link={token}"
    assert data["messages_url"] == f"/s/{token}/messages.json"
    assert data["signed_in"] is True
    assert "messages" not in data  # the script reads them from the transcript above
    messages = shared_messages(html)
    assert [m["content"] for m in messages] == [
        "Show me **code**",
        "```python\nprint(1)\n```",
        "Still going",
    ]
    # As the link's socket sends a message: nothing the link does not show.
    assert messages == [link_message(m) for m in sharing.link_transcript(conversation)]
    assert set(messages[1]) == {
        "id",
        "parent_id",
        "role",
        "author",
        "content",
        "status",
        "finish_reason",
        "seq",
        "created_at",
    }
    assert "private reasoning" not in html


def test_the_messages_read_again_are_what_the_link_shows_and_not_an_opening(
    alice: User, bob: User, conversation: Conversation, caplog: Any
) -> None:
    link, token = sharing.create_share_link(alice, conversation.id)
    client = client_for(bob)
    caplog.set_level("INFO", logger="chatsite.request")
    assert client.get(f"/s/{token}/").status_code == 200
    response = client.get(f"/s/{token}/messages.json")
    assert response.status_code == 200
    body = response.json()
    assert body["title"] == str(conversation)
    assert [m["status"] for m in body["messages"]] == ["complete", "complete", "streaming"]
    assert "reasoning" not in body["messages"][1]
    assert ShareLinkOpen.objects.filter(link=link).count() == 1  # the page's opening only

    # Anonymous: only while public links are allowed.
    assert Client().get(f"/s/{token}/messages.json").status_code == 404
    SharingSettings.objects.update_or_create(pk=1, defaults={"allow_public_links": True})
    anonymous = Client().get(f"/s/{token}/")
    assert (
        anonymous.status_code == 200 and page_data(anonymous.content.decode())["signed_in"] is False
    )
    assert Client().get(f"/s/{token}/messages.json").status_code == 200

    sharing.revoke_share_link(alice, link.pk)
    assert client.get(f"/s/{token}/messages.json").status_code == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "chatsite.request"]
    assert any(line.startswith("GET /s/<token>/messages.json 200 ") for line in lines), lines
    assert not any(token in record.getMessage() for record in caplog.records)
