"""The page a share link opens draws a long transcript as the conversation page does: the replies
on screen at once, the others' text standing as plain text until the reader comes near them or
the page is idle (it drew every reply's markdown before it answered)."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conversations import sharing
from conversations.models import Conversation, Message
from tests.ui.conftest import LiveServer, new_session

TURNS = 60
ANSWER = "Answer {i}: **bold {i}**\n\n```python\nprint({i})\n```\n\n<b>not markup {i}</b>"

# How the transcript stood when the page's script had run (module scripts run before
# DOMContentLoaded).
RECORD_FIRST_DRAW = """
document.addEventListener("DOMContentLoaded", () => {
  window.firstDraw = {
    placeholders: document.querySelectorAll(".messages [data-placeholder]").length,
    drawn: document.querySelectorAll(".messages .message-content strong").length,
    elementsInPlaceholders: document.querySelectorAll("[data-placeholder] *").length,
  };
});
"""


def test_a_long_shared_conversation_opens_at_once_and_draws_as_it_is_read(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation
) -> None:
    parent = None
    for i in range(TURNS):
        parent = Message.objects.create(
            conversation=ui_conversation,
            parent=parent,
            role="user",
            author=ui_conversation.owner,
            content=f"Question {i}",
        )
        parent = Message.objects.create(
            conversation=ui_conversation,
            parent=parent,
            role="assistant",
            model=ui_conversation.model,
            content=ANSWER.format(i=i),
            status="complete",
            finish_reason="stop",
        )
    _, token = sharing.create_share_link(ui_conversation.owner, ui_conversation.id)
    session = new_session(browser, chat_server, viewport={"width": 1280, "height": 800})
    page = session.page
    try:
        page.add_init_script(RECORD_FIRST_DRAW)
        page.goto(f"{chat_server.url}/s/{token}/")
        articles = page.locator(".messages > article")
        expect(articles).to_have_count(2 * TURNS)
        first = page.evaluate("window.firstDraw")
        # The first replies, on screen, were drawn before the page answered; most were not.
        assert 1 <= first["drawn"] < 10, first
        assert first["placeholders"] >= TURNS - 10, first
        assert first["elementsInPlaceholders"] == 0, first  # their text stands as text only
        expect(articles.nth(1).locator(".message-content strong")).to_have_text("bold 0")

        # The newest reply's text is on the page from the start, drawn or not; at the bottom,
        # it is markdown, its HTML shown as text.
        newest = articles.nth(2 * TURNS - 1)
        expect(newest).to_contain_text(f"Answer {TURNS - 1}:")
        page.evaluate("window.scrollTo(0, document.scrollingElement.scrollHeight)")
        expect(newest.locator(".message-content strong")).to_have_text(f"bold {TURNS - 1}")
        expect(newest.locator(".message-content pre.code-block")).to_be_visible()
        expect(newest.locator(".message-content")).to_contain_text(f"<b>not markup {TURNS - 1}</b>")
        expect(newest.locator(".message-content b")).to_have_count(0)
        # Once the page is idle, nothing is left undrawn.
        expect(page.locator("[data-placeholder]")).to_have_count(0, timeout=20000)
        expect(page.locator(".messages .message-content strong")).to_have_count(TURNS)
        assert not session.errors, session.errors
    finally:
        page.context.close()
