"""The page that shows a new share link ("shown only this once") is the answer to the form that
created it. Reloading it sent the form again and silently made another live link (counted
toward the 50), and Back showed the link again from the browser's copy. Now the form carries an
id used once, as the keys page's does, and the page is never stored by the browser."""

from __future__ import annotations

import re

import pytest

from conversations.models import Conversation, ShareLink, User
from tests.support import client_for

pytestmark = pytest.mark.django_db


def test_the_same_form_sent_twice_makes_one_link_and_no_page_is_stored(
    alice: User, alice_conversation: Conversation
) -> None:
    client = client_for(alice)
    page = client.get(f"/c/{alice_conversation.id}/sharing/")
    assert page["Cache-Control"] == "no-store"
    form_id = re.search(r'name="form_id" value="([^"]+)"', page.content.decode())
    assert form_id is not None
    create = f"/c/{alice_conversation.id}/sharing/links/"
    fields = {"expires_in_days": "7", "form_id": form_id.group(1)}

    created = client.post(create, fields)
    assert created.status_code == 200 and "shown only this once" in created.content.decode()
    assert created["Cache-Control"] == "no-store"

    again = client.post(create, fields)  # a reload of the answer
    assert again.status_code == 409 and again["Cache-Control"] == "no-store"
    text = again.content.decode()
    assert "already sent, and its link created" in text and "shown only this once" not in text
    assert ShareLink.objects.filter(conversation=alice_conversation).count() == 1

    # The page's next form makes a link of its own.
    next_id = re.search(r'name="form_id" value="([^"]+)"', again.content.decode())
    assert next_id is not None and next_id.group(1) != fields["form_id"]
    assert client.post(create, {"form_id": next_id.group(1)}).status_code == 200
    assert ShareLink.objects.filter(conversation=alice_conversation).count() == 2
