"""The usage page's figures start at one edge at phone width as on a desktop: each row's term
shrank its own way, so 'Today', 'This month', 'Per request' and 'Limits from' had their figures
start at four different places."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conversations.models import User
from tests.ui.conftest import LiveServer, new_session


def test_the_usage_figures_line_up_at_phone_width(
    browser: Browser, chat_server: LiveServer, ui_user: User
) -> None:
    for width, height in ((375, 740), (1280, 800)):
        session = new_session(browser, chat_server, viewport={"width": width, "height": height})
        page = session.page
        try:
            page.goto(f"{chat_server.url}/usage/")
            figures = page.locator(".usage-figures dd")
            expect(figures).to_have_count(4)
            lefts = figures.evaluate_all(
                "dds => dds.map(dd => Math.round(dd.getBoundingClientRect().left))"
            )
            assert len(set(lefts)) == 1, lefts
            assert page.evaluate("document.documentElement.scrollWidth") <= width
        finally:
            page.context.close()
