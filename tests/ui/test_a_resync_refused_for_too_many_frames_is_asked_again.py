"""A page's ``reply.sync`` refused for its account's frame budget (``rate_limited``, with
``reply_id`` and ``retry_after``) is asked again once ``retry_after`` has passed, and the page
catches up with the whole reply. Before, the page kept waiting for a snapshot that would never
come: every later frame of the reply was dropped while it "synced", and it stopped moving until
a reconnect.

The budget is spent for real: as the page's sync goes to the server, 250 syncs of an unknown
reply go first on the same socket (Playwright routes it; their answers are not passed to the
page)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from playwright.sync_api import Browser, WebSocketRoute, expect

from conversations import generation
from conversations.models import Conversation
from tests.ui.conftest import LiveServer, send, sign_in, words

ANSWER = words(60, "tok")
SPENDING = generation.ACCOUNT_FRAMES_AT_ONCE + 50


class SpendOnSync:
    def __init__(self) -> None:
        self.armed = False
        self.junk = str(uuid.uuid4())
        self.told: list[dict[str, Any]] = []

    def __call__(self, page_side: WebSocketRoute) -> None:
        server_side = page_side.connect_to_server()

        def to_server(message: str | bytes) -> None:
            if (
                self.armed
                and isinstance(message, str)
                and json.loads(message)["type"] == "reply.sync"
            ):
                self.armed = False
                for _ in range(SPENDING):
                    server_side.send(
                        json.dumps({"type": "reply.sync", "reply_id": self.junk, "after_seq": 0})
                    )
            server_side.send(message)

        def to_page(message: str | bytes) -> None:
            if isinstance(message, str):
                frame = json.loads(message)
                if self.junk in message or (
                    frame.get("request_type") == "reply.sync" and frame.get("code") == "not_found"
                ):
                    return  # an answer to the spending syncs
                if frame["type"] == "error":
                    self.told.append(frame)
            page_side.send(message)

        page_side.on_message(to_server)
        server_side.on_message(to_page)


def test_a_resync_refused_for_too_many_frames_is_asked_again_and_catches_up(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation
) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        route = SpendOnSync()
        page.route_web_socket(re.compile(r"/ws/conversations/"), route)
        sign_in(page, chat_server)
        page.goto(f"{chat_server.url}/c/{ui_conversation.id}/")
        status = page.locator("#connection-status")
        expect(status).to_have_text("Connected")
        send(page, f"Go [[sim: tokens_per_s=20 say={ANSWER}]]")
        content = page.get_by_role("article", name=re.compile("^DeepSeek Chat")).locator(
            ".message-content"
        )
        expect(content).to_contain_text("tok2")

        # The page's socket goes away while the reply is written; it comes back, and its sync
        # of the reply finds the account's frames spent.
        page.evaluate("() => { window.chatSocket.closed = true; window.chatSocket.drop(); }")
        page.wait_for_function("() => window.chatSocket.socket === null")
        page.wait_for_timeout(500)
        route.armed = True
        page.evaluate("() => window.chatSocket.connect()")
        expect(status).to_have_text("Connected")
        expect(content).to_have_text(ANSWER, timeout=30000)
        refused = [t for t in route.told if t["code"] == "rate_limited"]
        assert refused and refused[0]["request_type"] == "reply.sync", route.told
        assert refused[0]["reply_id"] != route.junk
        # Said to no one: the page asked again by itself, and its composer shows no error.
        expect(page.locator("#composer-error")).to_be_empty()
    finally:
        context.close()
