from __future__ import annotations

from playwright.sync_api import Browser, expect

from conversations.models import Conversation
from tests.ui.conftest import LiveServer, new_session

BACKGROUND = "() => getComputedStyle(document.body).backgroundColor"


def test_dark_mode_follows_the_system_and_the_toggle_is_remembered(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation
) -> None:
    session = new_session(browser, chat_server, color_scheme="dark")
    page = session.page
    try:
        session.open(ui_conversation)
        assert page.evaluate(BACKGROUND) == "rgb(20, 22, 27)"
        session.screenshot("conversation-dark")

        page.get_by_role("button", name="Switch to light theme").click()
        assert page.evaluate(BACKGROUND) == "rgb(255, 255, 255)"
        page.reload()
        expect(page.get_by_role("button", name="Switch to dark theme")).to_be_visible()
        assert page.evaluate(BACKGROUND) == "rgb(255, 255, 255)"
        assert page.evaluate("localStorage.getItem('theme')") == "light"
    finally:
        page.context.close()
