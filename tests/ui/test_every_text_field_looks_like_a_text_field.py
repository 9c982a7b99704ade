"""A text field written without a type (the sharing page's collaborators and expiry, search's
words, the team page's title filter, Settings' tool choice) looks like the others: they kept the
browser's bare square box, unlike every field around them."""

from __future__ import annotations

from playwright.sync_api import Browser

from conversations.models import Conversation
from tests.ui.conftest import LiveServer, new_session

STYLE = """(field) => {
  const style = getComputedStyle(field);
  return [style.borderRadius, style.borderTopColor, style.paddingLeft];
}"""


def test_every_text_field_looks_like_a_text_field(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation
) -> None:
    session = new_session(browser, chat_server, viewport={"width": 1280, "height": 800})
    page = session.page
    try:
        page.goto(f"{chat_server.url}/settings/api-keys/")
        typed = page.get_by_label("Name").evaluate(STYLE)
        fields = {
            f"/c/{ui_conversation.id}/sharing/": ["#collaborators", "#expires_in_days"],
            "/search/": ["#q"],
            "/team/": ["#q"],
        }
        for path, selectors in fields.items():
            page.goto(chat_server.url + path)
            for selector in selectors:
                assert page.locator(selector).evaluate(STYLE) == typed, (path, selector)
        assert not session.errors, session.errors
    finally:
        page.context.close()
