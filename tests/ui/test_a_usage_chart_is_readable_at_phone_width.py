"""At phone width a usage chart keeps the size its labels were drawn for and scrolls within its
frame: scaled down to the window, its day labels were ~5px high, unreadable. The page itself
does not scroll sideways."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conversations.models import User
from tests.ui.conftest import LiveServer, new_session


def test_the_usage_chart_labels_are_readable_at_phone_width(
    browser: Browser, chat_server: LiveServer, ui_user: User
) -> None:
    session = new_session(browser, chat_server, viewport={"width": 375, "height": 740})
    page = session.page
    try:
        page.goto(f"{chat_server.url}/usage/")
        chart = page.locator(".chart-frame svg.chart")
        expect(chart).to_have_count(1)
        label_height = chart.locator("text").last.evaluate(
            "label => label.getBoundingClientRect().height"
        )
        assert label_height >= 9, label_height
        frame = page.locator(".chart-frame")
        assert frame.evaluate("f => f.scrollWidth > f.clientWidth")  # it scrolls, in its frame
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        page.context.close()
