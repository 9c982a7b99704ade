from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation, Message
from tests.ui.conftest import Session, send, wait_until_idle, words


def test_stop_ends_the_reply_and_offers_to_continue(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    send(page, f"Count slowly [[sim: tokens_per_s=8 say={words(60)}]]")
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(reply.locator(".message-content")).to_contain_text("word2")
    page.get_by_role("button", name="Stop", exact=True).click()

    wait_until_idle(page)
    expect(reply).to_contain_text("Stopped.")
    expect(reply.get_by_role("button", name="Continue", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_visible()
    row = Message.objects.get(conversation=ui_conversation, role="assistant")
    assert row.status == "cancelled"
    assert row.content.startswith("word0 word1")
    assert "word59" not in row.content
    expect(reply.locator(".message-content")).to_have_text(row.content)
    session.screenshot("stopped-reply")

    # Continue extends the same reply in place.
    kept = row.content
    reply.get_by_role("button", name="Continue", exact=True).click()
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_visible()
    wait_until_idle(page, timeout=60000)
    row.refresh_from_db()
    assert row.status == "complete"
    assert row.content.startswith(kept) and len(row.content) > len(kept)
    expect(reply).not_to_contain_text("Stopped.")
    assert Message.objects.filter(conversation=ui_conversation, role="assistant").count() == 1
