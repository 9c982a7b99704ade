"""At phone width a usage chart, wider than the window, scrolls in its frame; it opens on its
latest days, today's bar in sight, not on its oldest with the last two weeks out of sight."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import Browser, expect

from conversations.models import User
from tests.ui.conftest import LiveServer, new_session


def test_the_chart_shows_today_without_scrolling(
    browser: Browser, chat_server: LiveServer, ui_user: User
) -> None:
    today = timezone.localdate()
    latest = today - timedelta(days=4)  # the last day labelled (every fifth of 30, from the first)
    oldest = today - timedelta(days=29)
    session = new_session(browser, chat_server, viewport={"width": 375, "height": 740})
    page = session.page
    try:
        page.goto(f"{chat_server.url}/usage/")
        frame = page.locator(".chart-frame")
        expect(frame.locator("svg.chart")).to_have_count(1)
        assert frame.evaluate("f => f.scrollWidth > f.clientWidth")  # it scrolls, in its frame

        def in_sight(label: str) -> bool:
            return bool(
                frame.evaluate(
                    """(f, label) => {
                        const text = [...f.querySelectorAll("text")].find(t => t.textContent === label);
                        const box = text.getBoundingClientRect(), seen = f.getBoundingClientRect();
                        return box.left >= seen.left && box.right <= seen.right;
                    }""",
                    label,
                )
            )

        assert in_sight(f"{latest:%d %b}")
        assert not in_sight(f"{oldest:%d %b}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        page.context.close()


def test_where_it_fits_the_chart_starts_at_its_frames_left(
    browser: Browser, chat_server: LiveServer, ui_user: User
) -> None:
    from tests.support import make_user

    make_user("root", is_staff=True, is_superuser=True)
    for username, path in (("alice", "/usage/"), ("root", "/admin/usage/")):
        session = new_session(
            browser, chat_server, username=username, viewport={"width": 1600, "height": 900}
        )
        page = session.page
        try:
            page.goto(f"{chat_server.url}{path}")
            frame = page.locator(".chart-frame").first
            lefts = frame.evaluate(
                "f => [f.getBoundingClientRect().left, f.querySelector('svg').getBoundingClientRect().left]"
            )
            assert abs(lefts[0] - lefts[1]) < 1, (path, lefts)
        finally:
            page.context.close()
