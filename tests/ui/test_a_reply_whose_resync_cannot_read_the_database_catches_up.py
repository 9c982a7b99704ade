"""A page that comes back to a reply being written syncs it; when the server cannot read the
reply from the database just then, it answers ``database_unavailable`` (with ``reply_id`` and
``retry_after``), and the page asks again once ``retry_after`` has passed: it catches up with
the whole reply without a reload and without any text twice, even while the model is silent
(no later frame of the reply would start a resync of the server's own). A share link's page
too: there the server checks the link before the sync, and a check that could not read the
database escaped the consumer (a traceback, the socket closed; the page, told nothing, had to
reconnect once the database was back); it is now answered as a failed read of the reply.

The worker reaches PostgreSQL through tests/pgproxy.py; the database is cut the moment the
page's ``reply.sync`` leaves the browser (Playwright routes the page's socket, forwarding every
frame) and restored as the server's answer comes back."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from playwright.sync_api import Browser, WebSocketRoute, expect

from conversations import sharing
from conversations.models import Conversation, Message, SharingSettings
from tests import servers
from tests.pgproxy import PgProxy, pg_proxy
from tests.servers import daphne_worker
from tests.ui.conftest import SIM_KEY, LiveServer, send, sign_in, wait_until_idle, words

ANSWER = words(60, "tok")


@pytest.fixture
def proxy() -> Iterator[PgProxy]:
    db = connection.settings_dict
    with pg_proxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)) as proxy:
        yield proxy


class CutOnSync:
    """Routes the page's conversation socket: once armed, the database is cut as the page's
    next ``reply.sync`` goes to the server, and restored as the server's error comes back
    (``told``: the error frames the page was sent)."""

    def __init__(self, proxy: PgProxy) -> None:
        self.proxy = proxy
        self.armed = False
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
                self.proxy.cut()
            server_side.send(message)

        def to_page(message: str | bytes) -> None:
            if isinstance(message, str) and json.loads(message)["type"] == "error":
                self.told.append(json.loads(message))
                self.proxy.restore()
            page_side.send(message)

        page_side.on_message(to_server)
        server_side.on_message(to_page)


def test_a_resync_refused_for_the_database_is_asked_again_and_catches_up(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation, proxy: PgProxy
) -> None:
    db = connection.settings_dict
    through_proxy = servers.test_database_url().replace(
        f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/", f"@127.0.0.1:{proxy.port}/"
    )
    with daphne_worker(chat_server.simulator_url, SIM_KEY, DATABASE_URL=through_proxy) as base:
        server = LiveServer(url=base, simulator_url=chat_server.simulator_url, log=chat_server.log)
        context = browser.new_context()
        try:
            page = context.new_page()
            route = CutOnSync(proxy)
            page.route_web_socket(re.compile(r"/ws/conversations/"), route)
            sign_in(page, server)
            page.goto(f"{base}/c/{ui_conversation.id}/")
            status = page.locator("#connection-status")
            expect(status).to_have_text("Connected")

            # The whole answer, then the model goes silent (no [DONE]): the reply stays
            # being written, and no frame of it comes any more.
            send(page, f"Go [[sim: tokens_per_s=30 stall_after=1000 say={ANSWER}]]")
            reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
            content = reply.locator(".message-content")
            expect(content).to_contain_text("tok2")

            # The page's socket goes away while the rest is written (which another tab,
            # connected all along, shows: the database is only checkpointed once a second).
            page.evaluate("() => { window.chatSocket.closed = true; window.chatSocket.drop(); }")
            page.wait_for_function("() => window.chatSocket.socket === null")
            watcher = context.new_page()
            watcher.goto(f"{base}/c/{ui_conversation.id}/")
            expect(
                watcher.get_by_role("article", name=re.compile("^DeepSeek Chat")).locator(
                    ".message-content"
                )
            ).to_have_text(ANSWER)
            row = Message.objects.get(conversation=ui_conversation, role="assistant")
            expect(content).not_to_have_text(ANSWER)
            page.evaluate("() => { window.sameDocument = true; }")

            # It comes back; its sync of the reply meets the database cut.
            route.armed = True
            page.evaluate("() => window.chatSocket.connect()")
            expect(status).to_have_text("Connected")
            expect(content).to_have_text(ANSWER, timeout=30000)
            assert [(told["code"], told.get("reply_id")) for told in route.told] == [
                ("database_unavailable", str(row.pk))
            ], route.told
            assert route.told[0]["request_type"] == "reply.sync"
            assert page.evaluate("() => window.sameDocument") is True
            expect(page.get_by_role("button", name="Stop", exact=True)).to_be_visible()

            page.get_by_role("button", name="Stop", exact=True).click()
            wait_until_idle(page)
            row.refresh_from_db()
            assert row.status == "cancelled" and row.content == ANSWER
            expect(content).to_have_text(ANSWER)
        finally:
            context.close()


def test_a_share_link_page_asks_again_too(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation, proxy: PgProxy
) -> None:
    SharingSettings.objects.update_or_create(pk=1, defaults={"allow_public_links": True})
    _, token = sharing.create_share_link(ui_conversation.owner, ui_conversation.id)
    db = connection.settings_dict
    through_proxy = servers.test_database_url().replace(
        f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/", f"@127.0.0.1:{proxy.port}/"
    )
    with daphne_worker(chat_server.simulator_url, SIM_KEY, DATABASE_URL=through_proxy) as base:
        server = LiveServer(url=base, simulator_url=chat_server.simulator_url, log=chat_server.log)
        owners = browser.new_context()
        viewers = browser.new_context()  # an anonymous viewer of the link
        try:
            owner = owners.new_page()
            sign_in(owner, server)
            owner.goto(f"{base}/c/{ui_conversation.id}/")
            expect(owner.locator("#connection-status")).to_have_text("Connected")
            viewer = viewers.new_page()
            route = CutOnSync(proxy)
            viewer.route_web_socket(re.compile(r"/ws/conversations/"), route)
            viewer.goto(f"{base}/s/{token}/")
            status = viewer.locator("#connection-status")
            expect(status).to_have_text("Live")

            send(owner, f"Go [[sim: tokens_per_s=30 stall_after=1000 say={ANSWER}]]")
            content = viewer.get_by_role("article", name="DeepSeek Chat").locator(
                ".message-content"
            )
            expect(content).to_contain_text("tok2")
            viewer.evaluate("() => { window.chatSocket.closed = true; window.chatSocket.drop(); }")
            viewer.wait_for_function("() => window.chatSocket.socket === null")
            owner_content = owner.get_by_role("article", name=re.compile("^DeepSeek Chat")).locator(
                ".message-content"
            )
            expect(owner_content).to_have_text(ANSWER)
            expect(content).not_to_have_text(ANSWER)
            viewer.evaluate("() => { window.sameDocument = true; }")

            route.armed = True
            viewer.evaluate("() => window.chatSocket.connect()")
            expect(status).to_have_text("Live")
            expect(content).to_have_text(ANSWER, timeout=30000)
            assert [told["code"] for told in route.told] == ["database_unavailable"], route.told
            assert viewer.evaluate("() => window.sameDocument") is True

            owner.get_by_role("button", name="Stop", exact=True).click()
            wait_until_idle(owner)
            expect(viewer.get_by_role("article", name="DeepSeek Chat")).not_to_have_class(
                re.compile(r"\bis-streaming\b")
            )
            expect(content).to_have_text(ANSWER)
        finally:
            owners.close()
            viewers.close()
