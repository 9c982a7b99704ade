"""Keyboard only: the first Tab on a page reaches 'Skip to the content', and following it the next
Tab is in the page's content, past the top bar. The link said 'Skip to the conversation' on every
page and led nowhere on most (their <main> had no id="main")."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conversations.models import Conversation
from tests.ui.conftest import LiveServer, new_session

# (Pages whose first field takes the focus, as sign-in and the password's, start past the link.)
PAGES = ["/usage/", "/team/", "/settings/api-keys/", "/c/{id}/sharing/"]

IN_MAIN = "() => document.getElementById('main')?.contains(document.activeElement) ?? false"


def test_the_skip_link_leads_to_each_pages_content(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation
) -> None:
    session = new_session(browser, chat_server, viewport={"width": 1280, "height": 800})
    page = session.page
    try:
        for path in PAGES:
            page.goto(chat_server.url + path.format(id=ui_conversation.id))
            page.keyboard.press("Tab")
            skip = page.get_by_role("link", name="Skip to the content")
            expect(skip).to_be_focused()
            page.keyboard.press("Enter")
            page.keyboard.press("Tab")
            assert page.evaluate(IN_MAIN), (path, page.evaluate("document.activeElement.outerHTML"))

        # The conversation page names what it skips to.
        page.goto(f"{chat_server.url}/c/{ui_conversation.id}/")
        expect(page.locator(".skip-link")).to_have_text("Skip to the conversation")
        assert not session.errors, session.errors
    finally:
        page.context.close()
