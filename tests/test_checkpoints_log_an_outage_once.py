"""While the database is out of reach, the process's checkpoint writer says so once, and once
when it can write again: not at every write, nor once for each reply (a failed write is tried
reply by reply only when the database answered, to keep one bad row from holding back the
others)."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from conversations import actions, pgpool
from conversations.models import Conversation, Message, User
from tests.pgproxy import PgProxy
from tests.reaping import proxy  # noqa: F401 - a fixture
from tests.test_checkpoints_group_write import replies, settled

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]


@pytest.fixture
def quick_acquire(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pool (made after this) gives up waiting for a connection within half a second."""
    monkeypatch.setattr(pgpool, "ACQUIRE_TIMEOUT_S", 0.5)


async def write_all(service: Any, rows: list[Message], text: str, seq: int) -> None:
    for row in rows:
        service.checkpoints.add(
            actions.checkpoint(row.pk, content=text, reasoning="", tool_calls=None, seq=seq)
        )
    await settled(service)


async def test_an_outage_is_logged_when_it_begins_and_when_it_ends(
    quick_acquire: None,
    proxy: PgProxy,  # noqa: F811 - the fixture
    alice: User,
    alice_conversation: Conversation,
    generation_service: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rows = await sync_to_async(replies)(alice, alice_conversation, 5, generation_service.channel)
    await write_all(generation_service, rows, "before", 2)
    caplog.set_level(logging.INFO, logger="conversations.generation")
    caplog.clear()

    await asyncio.to_thread(proxy.cut)
    for seq in (3, 4, 5):
        await write_all(generation_service, rows, f"during {seq}", seq)
    during = [r for r in caplog.records if "checkpoint" in r.getMessage()]
    assert [r.levelno for r in during] == [logging.WARNING]
    assert "the database is unavailable" in during[0].getMessage()

    await asyncio.to_thread(proxy.restore)
    for _ in range(40):  # the pool reconnects within seconds
        await write_all(generation_service, rows, "after", 6)
        back = [r for r in caplog.records if "written again" in r.getMessage()]
        if back:
            break
        await asyncio.sleep(0.25)
    assert len(back) == 1 and back[0].levelno == logging.INFO
    # the three writes of the cut, and any made before the pool had reconnected
    lost = re.search(r"\((\d+) lost\)", back[0].getMessage())
    assert lost is not None and int(lost[1]) >= 3
    assert not [r for r in caplog.records if "checkpoint of" in r.getMessage()]
    for row in rows:
        await row.arefresh_from_db()
        assert (row.content, row.seq) == ("after", 6)


async def test_a_reply_whose_row_is_locked_does_not_hold_back_the_others(
    alice: User,
    alice_conversation: Conversation,
    generation_service: Any,
    settings: Any,
) -> None:
    """A statement that waits too long on one locked row fails as an unavailable database
    would, but the pool still connects: the others are written one by one."""
    settings.DATABASE_STALL_TIMEOUT_SECONDS = 0.5
    locked, *others = await sync_to_async(replies)(
        alice, alice_conversation, 3, generation_service.channel
    )
    db = connection.settings_dict
    holder = await psycopg.AsyncConnection.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"]
    )
    try:
        await holder.execute(
            "SELECT 1 FROM conversations_message WHERE id = %s FOR UPDATE", [locked.pk]
        )
        await write_all(generation_service, [locked, *others], "written", 2)
    finally:
        await holder.rollback()
        await holder.close()
    for row in others:
        await row.arefresh_from_db()
        assert (row.content, row.seq) == ("written", 2)
    await locked.arefresh_from_db()
    assert locked.content == ""
