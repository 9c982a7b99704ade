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


def test_a_snippet_shows_text_without_markdowns_marks(
    alice: User, alice_conversation: Conversation
) -> None:
    """Snippets showed the reply's markdown as written: headings' #, **, code fences and their
    language, backticks, link targets."""
    Message.objects.create(
        conversation=alice_conversation,
        role="assistant",
        content=(
            "### Rolling the okapi deploy\n\n"
            "1. Run **okapi** with `--dry-run` first\n"
            "- see [the okapi runbook](https://example.com/runbook)\n"
            "> quoted *okapi* notes\n\n"
            "```bash\nokapi deploy --all\n```"
        ),
    )
    [hit] = search.search(alice, "okapi")
    snippet = hit.snippet_html
    assert "<mark>okapi</mark>" in snippet
    for mark in ("#", "**", "`", "```", "bash", "](", "https://", "&gt;", "1. ", "- see"):
        assert mark not in snippet, (mark, snippet)
    assert "Rolling the <mark>okapi</mark> deploy" in snippet
    assert "the <mark>okapi</mark> runbook" in snippet


def test_plain_text_keeps_what_is_not_a_mark() -> None:
    assert search.plain_text("2 * 3 = 6, a*b and snake_case_name") == (
        "2 * 3 = 6, a*b and snake_case_name"
    )
    assert search.plain_text("Use __init__ and *this*") == "Use init and this"
