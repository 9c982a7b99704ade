"""The admin's usage dashboard at phone width: its tables scroll in their frames, as its charts
do, and the page itself does not scroll sideways. The users' table (eight columns) pushed the
page to over 500px, its header and filters sliding off with it."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conversations.models import User
from tests.support import make_user
from tests.ui.conftest import LiveServer, new_session


def test_the_dashboard_does_not_scroll_sideways_at_phone_width(
    browser: Browser, chat_server: LiveServer, ui_user: User
) -> None:
    make_user("root", is_staff=True, is_superuser=True)
    make_user("a-rather-long-user-name-for-a-phone")
    session = new_session(
        browser, chat_server, username="root", viewport={"width": 375, "height": 740}
    )
    page = session.page
    try:
        page.goto(f"{chat_server.url}/admin/usage/")
        expect(page.get_by_role("cell", name="a-rather-long-user-name-for-a-phone")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        users = page.locator(".table-frame").filter(has_text="a-rather-long-user-name")
        assert users.evaluate("f => f.scrollWidth > f.clientWidth")  # it scrolls, in its frame
        session.screenshot("usage-dashboard-375")
    finally:
        page.context.close()
