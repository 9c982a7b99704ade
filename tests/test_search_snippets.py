"""Search snippets mark the matches and nothing else: the control characters the highlighter
uses as its markers, if a message holds them, are not turned into highlights."""

from __future__ import annotations

import pytest

from conversations import search
from conversations.models import Conversation, Message, User

pytestmark = pytest.mark.django_db


def test_markers_inside_a_message_do_not_become_highlights(
    alice: User, alice_conversation: Conversation
) -> None:
    Message.objects.create(
        conversation=alice_conversation,
        role="user",
        author=alice,
        content="The \x02staging\x03 cluster \x03needs a new okapi\x02 plan.",
    )
    [hit] = search.search(alice, "okapi")
    assert hit.snippet_html.count("<mark>") == 1 and hit.snippet_html.count("</mark>") == 1
    assert "<mark>okapi</mark>" in hit.snippet_html
    assert "\x02" not in hit.snippet_html and "\x03" not in hit.snippet_html
