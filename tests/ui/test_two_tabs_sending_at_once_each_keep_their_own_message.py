"""One conversation open in two tabs, each on its own worker, a message sent from each at the
same moment: the two become versions of one another (siblings). Each tab jumped to the other
tab's message (every message.created took the view), and the tabs numbered the versions apart,
each in the order their frames reached it (a worker hands its own sockets its messages before
the other worker's). Now a tab keeps the message it sent, versions are numbered in the server's
order (created_at, then id) everywhere and after a reload, and a tab with nothing of its own
there (a third one, watching) still follows what the others send."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from playwright.sync_api import Browser, Locator, Page, expect

from conversations.models import Conversation, Message, User
from simulator.testing import running_simulator
from tests.servers import daphne_worker, redis_url
from tests.support import SIM_KEY
from tests.ui.conftest import LiveServer, sign_in, wait_until_idle


def _open(page: Page, base: str, conversation: Conversation) -> None:
    page.goto(f"{base}/c/{conversation.id}/")
    expect(page.locator("#connection-status")).to_have_text("Connected")


def _last_question(page: Page) -> Locator:
    return page.get_by_role("article", name="You").last


def _versions_in_server_order(conversation: Conversation, parent: Message) -> list[str]:
    return [
        m.content
        for m in Message.objects.filter(conversation=conversation, parent=parent).order_by(
            "created_at", "id"
        )
    ]


def test_two_tabs_sending_at_once_each_keep_their_own_message(
    browser: Browser, ui_conversation: Conversation, ui_user: User
) -> None:
    question = Message.objects.create(
        conversation=ui_conversation, role="user", author=ui_user, content="Where do we deploy?"
    )
    answer = Message.objects.create(
        conversation=ui_conversation,
        parent=question,
        role="assistant",
        model=ui_conversation.model,
        content="To the staging cluster first.",
        status="complete",
        finish_reason="stop",
    )
    context = browser.new_context()
    try:
        with (
            running_simulator(api_key=SIM_KEY, tokens_per_s=40, seed=3) as upstream,
            daphne_worker(upstream, SIM_KEY, REDIS_URL=redis_url()) as first_worker,
            daphne_worker(upstream, SIM_KEY, REDIS_URL=redis_url()) as second_worker,
        ):
            tab_one, tab_two, watcher = (context.new_page() for _ in range(3))
            sign_in(
                tab_one, LiveServer(url=first_worker, simulator_url=upstream, log=Path(os.devnull))
            )
            _open(tab_one, first_worker, ui_conversation)
            _open(tab_two, second_worker, ui_conversation)
            _open(watcher, second_worker, ui_conversation)

            # Enter pressed in both tabs at the same moment (by the clock they share).
            tab_one.get_by_role("textbox", name="Message", exact=True).fill("from tab one")
            tab_two.get_by_role("textbox", name="Message", exact=True).fill("from tab two")
            at = time.time() * 1000 + 500
            for tab in (tab_one, tab_two):
                tab.evaluate(
                    """(at) => setTimeout(
                        () => document.getElementById("composer").requestSubmit(),
                        at - Date.now(),
                    )""",
                    at,
                )
            deadline = time.monotonic() + 30
            while Message.objects.filter(conversation=ui_conversation).count() < 6:
                assert time.monotonic() < deadline, "the two messages and replies were not made"
                time.sleep(0.1)
            order = _versions_in_server_order(ui_conversation, answer)
            assert sorted(order) == ["from tab one", "from tab two"]  # siblings

            for tab, text in ((tab_one, "from tab one"), (tab_two, "from tab two")):
                wait_until_idle(tab)
                expect(_last_question(tab).locator(".user-text")).to_have_text(text)
                expect(_last_question(tab).locator(".branch-nav")).to_have_attribute(
                    "aria-label", f"Version {order.index(text) + 1} of 2"
                )
            # The watcher followed one of them, numbered as everywhere.
            wait_until_idle(watcher)
            shown = _last_question(watcher).locator(".user-text")
            expect(shown).to_have_text(re.compile("^from tab (one|two)$"))
            expect(_last_question(watcher).locator(".branch-nav")).to_have_attribute(
                "aria-label", f"Version {order.index(shown.inner_text()) + 1} of 2"
            )

            # Tab two goes on in its branch: the watcher follows it, tab one keeps its own.
            composer = tab_two.get_by_role("textbox", name="Message", exact=True)
            composer.fill("and a follow-up")
            composer.press("Enter")
            expect(watcher.locator(".user-text").last).to_have_text("and a follow-up")
            wait_until_idle(watcher)
            expect(_last_question(tab_one).locator(".user-text")).to_have_text("from tab one")
            wait_until_idle(tab_two)

            # A reload numbers them as the server orders them (it shows the newest branch).
            tab_one.reload()
            expect(tab_one.locator("#connection-status")).to_have_text("Connected")
            versions = tab_one.locator(".branch-nav").first
            expect(versions).to_have_attribute(
                "aria-label", f"Version {order.index('from tab two') + 1} of 2"
            )
    finally:
        context.close()
