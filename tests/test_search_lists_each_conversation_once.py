"""Search lists a conversation once, however much of it matches: its best match's snippet, and
how many other matches it holds. "decorators" listed the same conversation three times (its
title and two of its messages), crowding out the others."""

from __future__ import annotations

import re

import pytest

from conversations import search, sharing
from conversations.models import Conversation, Message, ModelConfig, Team, User
from tests.support import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def python_notes(alice: User, chat_model: ModelConfig) -> Conversation:
    """A conversation whose title and two messages speak of decorators."""
    conversation = Conversation.objects.create(
        owner=alice, model=chat_model, title="Python decorators"
    )
    question = Message.objects.create(
        conversation=conversation,
        role="user",
        author=alice,
        content="How do decorators wrap a function?",
    )
    Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        model=chat_model,
        content="Decorators take a function and return another; stacked decorators apply inside out.",
    )
    return conversation


def test_a_conversation_matching_by_title_and_messages_is_one_hit(
    alice: User, python_notes: Conversation, chat_model: ModelConfig
) -> None:
    other = Conversation.objects.create(owner=alice, model=chat_model, title="Flask routing")
    Message.objects.create(
        conversation=other, role="user", author=alice, content="Which decorators route a URL?"
    )

    hits = search.search(alice, "decorators")
    assert [hit.conversation_id for hit in hits] == [str(python_notes.pk), str(other.pk)]
    best, single = hits
    assert best.message_id is None  # the title ranks first
    assert best.snippet_html == "Python <mark>decorators</mark>"
    assert best.other_matches == 2
    assert single.message_id is not None and single.other_matches == 0
    assert "<mark>decorators</mark>" in single.snippet_html

    page = client_for(alice).get("/search/", {"q": "decorators"}).content.decode()
    listed = re.findall(r'<li data-shared-id="([^"]+)"', page)
    assert listed == [str(python_notes.pk), str(other.pk)]
    assert "and 2 more matches in it" in page


def test_a_conversation_matching_by_messages_only_shows_its_best(
    alice: User, chat_model: ModelConfig
) -> None:
    conversation = Conversation.objects.create(owner=alice, model=chat_model, title="Misc")
    for content in ("okapi", "okapi okapi okapi in the okapi park", "a note on an okapi"):
        Message.objects.create(
            conversation=conversation, role="user", author=alice, content=content
        )

    [hit] = search.search(alice, "okapi")
    assert hit.other_matches == 2
    best = Message.objects.get(pk=hit.message_id)
    assert best.content == "okapi okapi okapi in the okapi park"


def test_one_hit_each_still_only_what_the_user_may_see(
    alice: User, bob: User, charlie: User, python_notes: Conversation
) -> None:
    ops = Team.objects.create(name="ops")
    ops.members.set([alice, bob])
    Team.objects.create(name="sales").members.set([charlie])
    sharing.set_visibility(alice, python_notes.id, "team", ops.id)

    [hit] = search.search(bob, "decorators", scope="team")
    assert hit.conversation_id == str(python_notes.pk) and hit.other_matches == 2
    assert search.search(bob, "decorators", scope="mine") == []
    for scope in ("all", "team", "mine"):
        assert search.search(charlie, "decorators", scope=scope) == []
