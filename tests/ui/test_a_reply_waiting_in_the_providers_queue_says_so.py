"""A reply the provider keeps in its queue says it is waiting for the model, not that it is being
written, until its first token comes; then it says "Writing…". The same on a share link's page."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations import sharing
from conversations.models import Conversation
from tests.ui.conftest import Session, wait_until_idle, words


def test_a_queued_reply_waits_for_the_model_then_writes(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    _, token = sharing.create_share_link(ui_conversation.owner, ui_conversation.id)
    link_page = page.context.new_page()
    link_page.goto(f"{session.server.url}/s/{token}/")
    expect(link_page.locator("#connection-status")).to_have_text("Live")
    composer = page.get_by_role("textbox", name="Message", exact=True)
    composer.fill(f"Slow [[sim: queue=4 tokens_per_s=15]] [[sim: say={words(60)}]]")
    composer.press("Enter")

    for tab in (page, link_page):
        reply = tab.get_by_role("article", name="DeepSeek Chat")
        state = reply.locator(".message-state")
        # In the provider's queue: nothing written yet, and the page says so.
        expect(state).to_have_text("Waiting for the model…", timeout=3000)
        expect(reply.locator(".message-content")).not_to_contain_text("word0")
    for tab in (page, link_page):
        reply = tab.get_by_role("article", name="DeepSeek Chat")
        expect(reply.locator(".message-content")).to_contain_text("word1", timeout=15000)
        expect(reply.locator(".message-state")).to_have_text("Writing…")
    wait_until_idle(page)
    expect(
        page.get_by_role("article", name="DeepSeek Chat").locator(".message-state")
    ).to_have_count(0)
    assert not session.errors, session.errors
