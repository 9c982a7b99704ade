"""A usage chart's peak, at the top of its axis, is read whole however large: the margin left of
the plot was sized for six digits, and a team's day of tens of millions of tokens (or a
thousand dollars) lost its first digits past the chart's left edge ("0,000,000")."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from playwright.sync_api import Browser, Page, expect

from conversations.models import ModelConfig, UsageRecord, User
from tests.support import make_user
from tests.ui.conftest import LiveServer, new_session


def peak_labels(page: Page) -> list[dict[str, Any]]:
    """Each chart's peak label: its text, and where it starts and ends in the chart's units."""
    return page.locator("svg.chart").evaluate_all(
        """charts => charts.map(chart => {
            const [peak] = [...chart.querySelectorAll('text[text-anchor="end"]')]
                .filter(label => label.textContent !== "0");
            const box = peak.getBBox();
            return {text: peak.textContent, start: box.x, end: box.x + box.width,
                    width: chart.viewBox.baseVal.width};
        })"""
    )


def test_a_charts_largest_peak_is_inside_the_chart(
    browser: Browser, chat_server: LiveServer, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    make_user("root", is_staff=True, is_superuser=True)
    UsageRecord.objects.create(
        user=ui_user,
        model=ui_chat_model,
        purpose=UsageRecord.Purpose.CHAT,
        state=UsageRecord.State.SETTLED,
        prompt_tokens=1_200_000_000,
        cache_miss_tokens=1_200_000_000,
        completion_tokens=34_567_890,
        total_tokens=1_234_567_890,
        cost=Decimal("12345.678"),
    )
    expected = {
        "/usage/": ["1,234,567,890"],
        "/admin/usage/": ["1,234,567,890", "$12,345.6780", "1,234,567,890"],
    }
    for username, path in (("alice", "/usage/"), ("root", "/admin/usage/")):
        session = new_session(browser, chat_server, username=username)
        page = session.page
        try:
            page.goto(f"{chat_server.url}{path}")
            expect(page.locator("svg.chart")).to_have_count(len(expected[path]))
            labels = peak_labels(page)
            assert [label["text"] for label in labels] == expected[path]
            for label in labels:
                assert label["start"] >= 0 and label["end"] <= label["width"], label
            session.screenshot(f"usage-chart-large-peak-{username}")
        finally:
            page.context.close()
