"""The API keys page sits in a column with margins as the other list pages do, and its table of
keys scrolls inside the page on a phone. It had no layout: its text and fields ran from the
window's left edge across the whole width, and at phone width the table widened the page."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conversations import api_keys
from conversations.models import Conversation
from tests.ui.conftest import LiveServer, new_session


def test_the_api_keys_page_is_laid_out_like_the_other_pages(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation
) -> None:
    api_keys.create_key(
        ui_conversation.owner, name="laptop scripts", expires_at=None, save_history=False
    )
    for width, height in ((1280, 800), (375, 740)):
        session = new_session(browser, chat_server, viewport={"width": width, "height": height})
        page = session.page
        try:
            page.goto(f"{chat_server.url}/settings/api-keys/")
            expect(page.get_by_role("cell", name="laptop scripts")).to_be_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            main = page.locator("main").bounding_box()
            assert main is not None
            assert main["x"] >= 8, main  # not flush against the window's edge
            if width == 1280:
                assert 700 <= main["width"] <= 900, main
                expect(page.get_by_role("button", name="Revoke")).to_be_in_viewport()
            # The table scrolls within the page, reachable by keyboard.
            keys = page.get_by_role("region", name="Table of your keys")
            expect(keys).to_have_attribute("tabindex", "0")
            session.screenshot(f"api-keys-{width}")
            assert not session.errors, session.errors
        finally:
            page.context.close()
