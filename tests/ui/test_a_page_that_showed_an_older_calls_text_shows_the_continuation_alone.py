"""A reply reaped while its task lives (its worker cut off from PostgreSQL) is continued while the
older call's task still streams. Pages on another worker were shown the older task's text past
what the row keeps (the reaper's end brings the stored reply, then the older task's next delta a
resync that task answers): the continuation's ``reply.started`` has a lower sequence number than
they hold. Each ends showing the kept text and the continuation, nothing of the older task's.

The conversation page is reset before that by the continue's ``message.created`` (the row as
the continuation starts from it, published to every socket before the ``reply.started``). A
share link's page keeps a message it holds as it is: it took the lower number over, kept the
older task's text and added the continuation's after it (the text the reply never had, until a
reload). Now a page holding a number other than the one a call starts from reads the reply
again (``applyStarted``, static/js/replies.js).

Two workers on one Redis: the holder reaches PostgreSQL through tests/pgproxy.py (cut while it
streams), the other reaps the reply and serves the pages, one of which continues it."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from playwright.sync_api import Browser, expect

from conversations import sharing
from conversations.models import Conversation, Message, SharingSettings
from simulator.testing import running_simulator
from tests import servers
from tests.pgproxy import PgProxy, pg_proxy
from tests.servers import daphne_worker, redis_url
from tests.support import SIM_KEY
from tests.ui.conftest import LiveServer, send, sign_in, wait_until_idle, words

ANSWER = words(150)
TIMERS = {"GENERATION_HEARTBEAT_SECONDS": "1", "GENERATION_STALE_SECONDS": "3"}


@pytest.fixture
def proxy() -> Iterator[PgProxy]:
    db = connection.settings_dict
    with pg_proxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)) as proxy:
        yield proxy


def _until(condition: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.1)
    return found


def test_a_continuation_begun_behind_the_older_calls_text_replaces_it(
    browser: Browser, ui_conversation: Conversation, proxy: PgProxy
) -> None:
    db = connection.settings_dict
    through_proxy = servers.test_database_url().replace(
        f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/", f"@127.0.0.1:{proxy.port}/"
    )
    SharingSettings.objects.update_or_create(pk=1, defaults={"allow_public_links": True})
    _, token = sharing.create_share_link(ui_conversation.owner, ui_conversation.id)
    context = browser.new_context()
    viewers = browser.new_context()  # a share link's anonymous viewer
    try:
        with (
            running_simulator(api_key=SIM_KEY, tokens_per_s=30, seed=1) as upstream,
            daphne_worker(
                upstream, SIM_KEY, DATABASE_URL=through_proxy, REDIS_URL=redis_url(), **TIMERS
            ) as holder,
            daphne_worker(upstream, SIM_KEY, REDIS_URL=redis_url(), **TIMERS) as other,
        ):
            page = context.new_page()
            sign_in(page, LiveServer(url=other, simulator_url=upstream, log=Path(os.devnull)))
            page.goto(f"{other}/c/{ui_conversation.id}/")
            expect(page.locator("#connection-status")).to_have_text("Connected")
            viewer = viewers.new_page()
            viewer.goto(f"{other}/s/{token}/")
            expect(viewer.locator("#connection-status")).to_have_text("Live")
            sender = context.new_page()
            sender.goto(f"{holder}/c/{ui_conversation.id}/")
            expect(sender.locator("#connection-status")).to_have_text("Connected")
            send(sender, f"Count [[sim: say={ANSWER}]]")

            content = page.get_by_role("article", name=re.compile("^DeepSeek Chat")).locator(
                ".message-content"
            )
            shared = viewer.get_by_role("article", name="DeepSeek Chat").locator(".message-content")
            expect(content).to_contain_text("word3")
            _until(
                lambda: Message.objects.filter(
                    conversation=ui_conversation, role="assistant", content__contains="word3"
                ).exists()
            )
            proxy.cut()
            try:
                kept = _until(
                    lambda: Message.objects.filter(
                        conversation=ui_conversation, role="assistant", status="interrupted"
                    ).first()
                )
                # The page shows the older task's text past what the row keeps.
                beyond = int(kept.content.split()[-1].removeprefix("word")) + 3
                expect(content).to_contain_text(f"word{beyond}")
                expect(shared).to_contain_text(f"word{beyond}")
                # The reply is continued (as a tab showing it interrupted does): the
                # continuation starts from the row's sequence number, below the page's.
                page.evaluate(
                    "(id) => window.chatSocket.send({type: 'reply.continue', reply_id: id})",
                    str(kept.pk),
                )
                _until(lambda: Message.objects.filter(pk=kept.pk, status="streaming").exists())
            finally:
                proxy.restore()
            wait_until_idle(page, timeout=60000)
            expect(viewer.get_by_role("article", name="DeepSeek Chat")).not_to_have_class(
                re.compile(r"\bis-streaming\b")
            )
            reply = Message.objects.get(pk=kept.pk)
            assert reply.status == "complete"
            assert reply.content == kept.content + ANSWER
            expect(content).to_have_text(reply.content)
            expect(shared).to_have_text(reply.content)
    finally:
        context.close()
        viewers.close()
