"""A new team member finds every page of their account from the top bar: their usage, the team's
conversations, search, their password and their API keys (the API keys page had no link at all:
only someone told its address could make a key). In a window too narrow for them all in the bar,
they are in its menu, and the page does not scroll sideways."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conversations.models import Conversation
from tests.ui.conftest import LiveServer, new_session

PAGES = {
    "Team": "Shared with you",
    "Search": "Search",
    "Usage": "Your usage",
    "API keys": "API keys",
    "Password": "Change password",
}


def test_the_top_bar_leads_to_every_account_page(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation
) -> None:
    session = new_session(browser, chat_server, viewport={"width": 1280, "height": 800})
    page = session.page
    try:
        session.open(ui_conversation)
        for link, heading in PAGES.items():
            account = page.get_by_role("navigation", name="Account")
            account.get_by_role("link", name=link, exact=True).click()
            expect(page.get_by_role("heading", level=1)).to_have_text(heading)
            page.go_back()
        assert not session.errors, session.errors
    finally:
        page.context.close()


def test_a_window_too_narrow_for_the_links_has_them_in_the_menu(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation
) -> None:
    session = new_session(browser, chat_server, viewport={"width": 760, "height": 800})
    page = session.page
    try:
        session.open(ui_conversation)
        assert page.evaluate("document.documentElement.scrollWidth") <= 760
        account = page.get_by_role("navigation", name="Account")
        account.get_by_role("button", name="Account pages").click()
        account.get_by_role("link", name="API keys", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("API keys")
        assert not session.errors, session.errors
    finally:
        page.context.close()
