"""A reply the page shows being written, of which the page then hears nothing, is asked for
again after a while: its end may have been lost on the way (Redis away as another worker
published it; the process of a task the reaper had already ended gone since). The server
answers from the reply's row, and the page shows how it ended.

Here the reply's row ends with no frame at all (written directly, as a lost end leaves it).
Before, the page showed the reply streaming, and its Stop button, until it was reloaded."""

from __future__ import annotations

from django.utils import timezone
from playwright.sync_api import Browser, expect

from conversations import sharing
from conversations.models import Conversation, Message, SharingSettings, User
from tests.ui.conftest import LiveServer, Session


def _streaming_reply(conversation: Conversation, user: User) -> Message:
    question = Message.objects.create(
        conversation=conversation, role="user", author=user, content="Tell me a story"
    )
    return Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        model=conversation.model,
        content="Once upon a time",
        status="streaming",
        seq=3,
        heartbeat_at=timezone.now(),  # not the reaper's to end
    )


def _ended_unheard(reply: Message) -> None:
    Message.objects.filter(pk=reply.pk).update(
        status="interrupted",
        error_code="worker_lost",
        error_message="The server handling this reply stopped; the text so far is kept.",
        content="Once upon a time, there was a queue",
        seq=5,
        heartbeat_at=None,
    )


def test_a_reply_that_ends_unheard_is_shown_ended(
    session: Session, ui_conversation: Conversation, ui_user: User
) -> None:
    reply = _streaming_reply(ui_conversation, ui_user)
    page = session.page
    page.add_init_script("window.chatQuietReplyMs = 1500")
    session.open(ui_conversation)
    stop = page.locator("#stop-button")
    expect(stop).to_be_visible()
    expect(page.get_by_text("Once upon a time")).to_be_visible()

    _ended_unheard(reply)
    expect(page.get_by_text("Once upon a time, there was a queue")).to_be_visible(timeout=10000)
    expect(stop).to_be_hidden()
    expect(page.locator(".message-error.status-interrupted")).to_have_text(
        "The server handling this reply stopped; the text so far is kept."
    )


def test_a_share_link_page_shows_a_reply_that_ends_unheard_ended(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation, ui_user: User
) -> None:
    reply = _streaming_reply(ui_conversation, ui_user)
    SharingSettings.objects.update_or_create(pk=1, defaults={"allow_public_links": True})
    _, token = sharing.create_share_link(ui_user, ui_conversation.id)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.add_init_script("window.chatQuietReplyMs = 1500")
        page.goto(f"{chat_server.url}/s/{token}/")
        expect(page.locator("#connection-status")).to_have_text("Live")
        expect(page.get_by_text("Once upon a time")).to_be_visible()
        _ended_unheard(reply)
        expect(page.get_by_text("Once upon a time, there was a queue")).to_be_visible(timeout=10000)
    finally:
        context.close()
