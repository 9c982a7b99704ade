"""A reply made of "$$" pairs (a model asked to repeat them; an imported conversation) is drawn
in a moment, as any reply of its length is. The math extensions of ``static/js/markdown.js``
are tried at every "$" and their patterns ran to the end of the text each time before failing:
drawing took time growing with the square of the length (40,000 characters: ~20 s; a reply of
the most a message may hold, minutes), the tab frozen meanwhile. Shared, it froze the tab of
every teammate who opened it, and of anyone holding a public link."""

from __future__ import annotations

from playwright.sync_api import Browser

from conversations import sharing
from conversations.models import Conversation, Message, SharingSettings
from tests.ui.conftest import LiveServer

# 40,000 characters (a message may hold 100,000). Not closed at the end: a final "$$" would make
# the whole text one formula, found at once.
HOSTILE = "$$" * 20_000 + "x"


def test_a_shared_reply_of_dollar_signs_opens_at_once(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation
) -> None:
    question = Message.objects.create(
        conversation=ui_conversation,
        role=Message.Role.USER,
        author=ui_conversation.owner,
        content="Repeat $$ for ever",
        status=Message.Status.COMPLETE,
    )
    Message.objects.create(
        conversation=ui_conversation,
        parent=question,
        role=Message.Role.ASSISTANT,
        model=ui_conversation.model,
        content=HOSTILE,
        status=Message.Status.COMPLETE,
        finish_reason="stop",
    )
    SharingSettings.objects.update_or_create(pk=1, defaults={"allow_public_links": True})
    _, token = sharing.create_share_link(ui_conversation.owner, ui_conversation.id)

    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{chat_server.url}/s/{token}/", wait_until="commit")
        # The script draws the transcript, then follows the link's socket: live in a moment
        # (not a snapshot of the page on failure: it holds the whole reply).
        page.wait_for_function(
            "() => document.getElementById('connection-status')?.textContent === 'Live'",
            timeout=5000,
        )
        drawn = page.locator(".shared-messages .message-content").last
        assert "$$$$" in drawn.inner_text()
    finally:
        context.close()
