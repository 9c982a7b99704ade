"""Enter pressed while a reply is being written sends nothing (one reply at a time on a
branch), and says so: it did nothing and said nothing (Send is hidden behind Stop), so the
message looked lost. The text stays in the composer; the note goes when the reply ends, and
Enter then sends it."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation, Message
from tests.ui.conftest import Session, send, wait_until_idle, words


def test_enter_during_a_reply_is_answered_and_keeps_the_text(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    send(page, f"Count slowly [[sim: tokens_per_s=8 say={words(60)}]]")
    expect(page.locator(".message-content").last).to_contain_text("word2")

    composer = page.get_by_role("textbox", name="Message", exact=True)
    composer.fill("And the next one [[sim: say=Next.]]")
    composer.press("Enter")
    note = page.locator("#composer-error")
    expect(note).to_have_text("A reply is being written: send this once it ends, or Stop it first.")
    expect(composer).to_have_value("And the next one [[sim: say=Next.]]")

    page.get_by_role("button", name="Stop", exact=True).click()
    wait_until_idle(page)
    expect(note).to_have_text("")
    composer.press("Enter")
    expect(page.locator(".message-content").last).to_have_text("Next.")
    assert Message.objects.filter(conversation=ui_conversation, role="user").count() == 2
    assert not session.errors, session.errors
