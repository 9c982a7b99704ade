"""A new conversation is named after its first reply however that reply ended: stopped by its
user, cut off or failed as well as complete. Only a complete first reply started the title, so
a conversation whose first reply was stopped stayed "New chat" for good. A reply that wrote
something gets a generated title (a small upstream call, its own ledger row); one that wrote
nothing is named by the first words of the user's message, with no call."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation, Message, ModelConfig, UsageRecord, User
from tests.ui.conftest import Session, send, wait_until_idle, words
from tests.ui.test_copy_buttons_and_the_generated_title import _wait_for_title


def test_a_first_reply_stopped_mid_text_gets_a_generated_title(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    page = session.page
    untitled = Conversation.objects.create(owner=ui_user, model=ui_chat_model, title="")
    session.open(untitled)
    heading = page.locator("#conversation-title")
    before = heading.inner_text()
    send(page, f"Count slowly [[sim: tokens_per_s=8 say={words(60)}]]")
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(reply.locator(".message-content")).to_contain_text("word2")
    page.get_by_role("button", name="Stop", exact=True).click()
    wait_until_idle(page)
    assert Message.objects.get(conversation=untitled, role="assistant").status == "cancelled"

    title = _wait_for_title(untitled)
    assert title != before
    expect(heading).to_have_text(title)
    expect(page.locator(f'.sidebar a[href="/c/{untitled.id}/"]')).to_have_text(title)
    assert UsageRecord.objects.filter(
        user=ui_user, purpose=UsageRecord.Purpose.TITLE, conversation=untitled
    ).exists()
    assert not session.errors, session.errors


def test_a_first_reply_stopped_before_any_text_is_named_by_the_message(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    page = session.page
    untitled = Conversation.objects.create(owner=ui_user, model=ui_chat_model, title="")
    session.open(untitled)
    send(page, "Plan the database upgrade for Friday night [[sim: first_token_latency=20]]")
    page.get_by_role("button", name="Stop", exact=True).click()
    wait_until_idle(page)
    reply = Message.objects.get(conversation=untitled, role="assistant")
    assert (reply.status, reply.content) == ("cancelled", "")

    expect(page.locator("#conversation-title")).to_have_text(
        "Plan the database upgrade for Friday night"
    )
    expect(page.locator(f'.sidebar a[href="/c/{untitled.id}/"]')).to_have_text(
        "Plan the database upgrade for Friday night"
    )
    assert not UsageRecord.objects.filter(purpose=UsageRecord.Purpose.TITLE).exists()
    assert not session.errors, session.errors
