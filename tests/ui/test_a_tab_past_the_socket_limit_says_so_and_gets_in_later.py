"""A tab opened past the worker's socket limit for the account (WEBSOCKETS_PER_ACCOUNT) says why
it is not connected, and connects once another tab closes. The server closes such a socket with
4429; the page retried it as any lost connection, from its fastest pace, with only
"Reconnecting…" to show for it (a share link's page likewise)."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conversations.models import Conversation
from tests.servers import daphne_worker
from tests.support import SIM_KEY
from tests.ui.conftest import LiveServer, sign_in


def test_one_tab_too_many_waits_with_the_reason_then_connects(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation
) -> None:
    with daphne_worker(chat_server.simulator_url, SIM_KEY, WEBSOCKETS_PER_ACCOUNT="1") as base:
        server = LiveServer(url=base, simulator_url=chat_server.simulator_url, log=chat_server.log)
        context = browser.new_context()
        try:
            first = context.new_page()
            sign_in(first, server)
            first.goto(f"{base}/c/{ui_conversation.id}/")
            expect(first.locator("#connection-status")).to_have_text("Connected", timeout=15000)

            second = context.new_page()
            second.goto(f"{base}/c/{ui_conversation.id}/")
            status = second.locator("#connection-status")
            expect(status).to_have_text(
                "Too many conversations open at once: close some tabs. Trying again…",
                timeout=15000,
            )
            # It keeps waiting (a try every 5-10 s), saying why, while the first tab is open.
            second.wait_for_timeout(3000)
            expect(status).not_to_have_text("Connected")

            first.close()
            expect(status).to_have_text("Connected", timeout=20000)
        finally:
            context.close()
