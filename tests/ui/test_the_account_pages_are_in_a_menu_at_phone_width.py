"""At phone width the top bar has no room for the account's pages: they are in a menu behind one
button (they were hidden, so on a phone there was no way to the usage page, search, the team's
conversations or the password short of typing their addresses). It opens by touch or keyboard,
and Escape closes it with the focus back on its button."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conversations.models import Conversation
from tests.ui.conftest import LiveServer, new_session

PAGES = {
    "Team": "Shared with you",
    "Search": "Search",
    "Usage": "Your usage",
    "Password": "Change password",
}


def test_the_account_pages_are_in_a_menu_at_phone_width(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation
) -> None:
    session = new_session(
        browser, chat_server, viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True
    )
    page = session.page
    try:
        session.open(ui_conversation)
        account = page.get_by_role("navigation", name="Account")
        menu_button = account.get_by_role("button", name="Account pages")
        expect(account.get_by_role("link", name="Usage")).to_be_hidden()
        expect(account.get_by_role("button", name="Sign out")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375

        for link, heading in PAGES.items():
            menu_button.tap()
            expect(menu_button).to_have_attribute("aria-expanded", "true")
            target = account.get_by_role("link", name=link, exact=True)
            expect(target).to_be_visible()
            box = target.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, box
            target.tap()
            expect(page.get_by_role("heading", level=1)).to_have_text(heading)
            page.go_back()
            session.wait_connected()

        # By keyboard: the menu opens on the first page; Escape closes it, back on its button.
        menu_button.focus()
        page.keyboard.press("Enter")
        expect(account.get_by_role("link", name="Team")).to_be_focused()
        page.keyboard.press("Escape")
        expect(account.get_by_role("link", name="Team")).to_be_hidden()
        expect(menu_button).to_be_focused()
        expect(menu_button).to_have_attribute("aria-expanded", "false")
        # A tap elsewhere closes it too.
        menu_button.tap()
        expect(account.get_by_role("link", name="Team")).to_be_visible()
        page.locator(".conversation-title").tap()
        expect(account.get_by_role("link", name="Team")).to_be_hidden()
        session.screenshot("phone-account-menu")
        assert not session.errors, session.errors
    finally:
        page.context.close()


def test_a_wide_window_shows_the_account_pages_in_the_bar(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation
) -> None:
    session = new_session(browser, chat_server, viewport={"width": 1280, "height": 800})
    page = session.page
    try:
        session.open(ui_conversation)
        account = page.get_by_role("navigation", name="Account")
        expect(account.get_by_role("button", name="Account pages")).to_be_hidden()
        for link in PAGES:
            expect(account.get_by_role("link", name=link, exact=True)).to_be_visible()
    finally:
        page.context.close()
