"""Each usage chart is shown under its title, which names it to a screen reader too: the
dashboard drew three charts one under the other with no word of what each counted (their
titles were only the SVGs' tooltips), told apart by their legends at best."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conversations.models import User
from tests.support import make_user
from tests.ui.conftest import LiveServer, new_session


def test_the_dashboards_charts_and_the_users_chart_are_titled(
    browser: Browser, chat_server: LiveServer, ui_user: User
) -> None:
    make_user("root", is_staff=True, is_superuser=True)
    titles = [
        "Tokens per day by model, last 90 days",
        "Cost per day by model, last 90 days",
        "Input tokens from cache (hit) and not (miss), and output tokens, per day, last 90 days",
    ]
    admin = new_session(browser, chat_server, username="root")
    try:
        page = admin.page
        page.goto(f"{chat_server.url}/admin/usage/")
        page.get_by_label("Period").select_option(label="90 days")
        page.get_by_role("button", name="Apply").click()
        for title in titles:
            expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
            chart = page.get_by_role("region", name=title, exact=True)
            expect(chart.locator("svg.chart")).to_be_visible()
        admin.screenshot("usage-dashboard-chart-titles")
    finally:
        admin.page.context.close()

    user = new_session(browser, chat_server)
    try:
        page = user.page
        page.goto(f"{chat_server.url}/usage/")
        title = "Your tokens per day, last 30 days"
        expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
        expect(
            page.get_by_role("region", name=title, exact=True).locator("svg.chart")
        ).to_be_visible()
    finally:
        user.page.context.close()
