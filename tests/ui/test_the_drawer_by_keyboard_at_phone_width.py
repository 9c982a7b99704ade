"""Keyboard only at phone width: the conversations drawer, closed, is out of the Tab order (its
controls were focusable off screen, so Tab wandered through invisible fields); opened, it takes
the focus; Escape closes it with the focus back on its button, and does not stop the reply being
written (it stopped the reply and left the drawer open)."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from conversations.models import Conversation
from tests.ui.conftest import LiveServer, new_session, send, words


def test_the_drawer_by_keyboard_at_phone_width(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation
) -> None:
    session = new_session(browser, chat_server, viewport={"width": 375, "height": 740})
    page = session.page
    try:
        session.open(ui_conversation)
        sidebar = page.get_by_role("complementary", name="Conversations")
        current = sidebar.get_by_role("link", name="Deploy notes")
        new_chat = sidebar.get_by_role("button", name="New chat")
        expect(new_chat).to_be_hidden()

        # Closed: Tab from the top bar goes on to the conversation, never into the drawer.
        page.get_by_role("button", name="Sign out").focus()
        for _ in range(4):
            page.keyboard.press("Tab")
            assert not page.evaluate(
                "document.getElementById('sidebar').contains(document.activeElement)"
            ), page.evaluate("document.activeElement.outerHTML")

        send(page, f"Count [[sim: tokens_per_s=8 say={words(60)}]]")
        reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
        expect(reply).to_contain_text("word2")

        toggle = page.get_by_role("button", name="Conversations")
        toggle.focus()
        page.keyboard.press("Enter")
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(current).to_be_focused()
        expect(new_chat).to_be_visible()
        page.keyboard.press("Escape")
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(toggle).to_be_focused()
        expect(new_chat).to_be_hidden()
        # The reply goes on: Escape closed the drawer only.
        expect(page.get_by_role("button", name="Stop", exact=True)).to_be_visible()
        expect(reply).to_contain_text("word20", timeout=15000)
        page.get_by_role("button", name="Stop", exact=True).click()
        assert not session.errors, session.errors
    finally:
        page.context.close()
