"""A share link's page whose socket is refused for its address's requests a minute
(ANONYMOUS_LINK_REQUESTS_PER_MINUTE: 4429 after an `error` frame `rate_limited`) says so, not
"close some tabs", and waits the frame's `retry_after` before it tries again: every try sooner
would be refused, and counted."""

from __future__ import annotations

import time

from django.db import connection
from playwright.sync_api import Browser, expect

from conversations import sharing
from conversations.models import Conversation, SharingSettings
from tests.servers import daphne_worker
from tests.support import SIM_KEY
from tests.ui.conftest import LiveServer


def test_the_page_says_its_address_made_too_many_requests_and_waits(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation
) -> None:
    SharingSettings.objects.update_or_create(pk=1, defaults={"allow_public_links": True})
    _, token = sharing.create_share_link(ui_conversation.owner, ui_conversation.id)
    with connection.cursor() as cursor:  # the page and its socket in one minute
        cursor.execute("SELECT 60 - mod(extract(epoch FROM now()), 60)")
        left = float(cursor.fetchone()[0])
    if left < 20:
        time.sleep(left + 0.2)
    with daphne_worker(
        chat_server.simulator_url, SIM_KEY, ANONYMOUS_LINK_REQUESTS_PER_MINUTE="1"
    ) as base:
        context = browser.new_context()
        try:
            page = context.new_page()
            sockets: list[str] = []
            page.on("websocket", lambda socket: sockets.append(socket.url))
            page.goto(f"{base}/s/{token}/")  # the minute's one request
            expect(page.locator("#connection-status")).to_have_text(
                "Too many requests from your address. Trying again soon…", timeout=15000
            )
            page.wait_for_timeout(4000)
            assert len(sockets) == 1, sockets  # waiting for the minute to end
        finally:
            context.close()
