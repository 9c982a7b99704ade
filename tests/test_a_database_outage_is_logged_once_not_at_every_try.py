"""While PostgreSQL refuses connections, the API's pool (``pgpool``) tries to connect about
once a second, and comes back within seconds of the database (``RECONNECT_TRIES_S``). The log
says the outage once when it begins (a warning naming what refused), then at most once every
``DATABASE_OUTAGE_LOG_SECONDS`` while it lasts (how long so far), and once when the database is
back (info) — not each try.

Before, each failed try was a warning of psycopg_pool's, and each round of tries given up
another: about one line a second per worker, for as long as the outage lasted.

A real PostgreSQL made to refuse connections to the test database, the pool's sessions
ended."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest

from conversations import pgpool
from tests.test_a_call_ending_during_a_database_outage_is_charged_the_providers_usage import (
    Outage,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

OUTAGE_S = 13.0
TOLD_EVERY_S = 5.0


async def test_an_outage_is_told_when_it_begins_now_and_then_and_when_it_ends(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.DATABASE_OUTAGE_LOG_SECONDS = TOLD_EVERY_S
    caplog.set_level(logging.INFO, logger="conversations.pgpool")
    outage = Outage("no-session-but-the-pools")
    try:
        await pgpool.fetch_one("SELECT 1", ())
        caplog.clear()
        outage.begin()
        with pytest.raises(pgpool.DatabaseUnavailable):
            await pgpool.fetch_one("SELECT 1", ())  # the pool finds its sessions ended
        await asyncio.sleep(OUTAGE_S)
        outage.end()
        while True:
            try:
                await pgpool.fetch_one("SELECT 1", ())
                break
            except pgpool.DatabaseUnavailable:
                continue
    finally:
        outage.end()
        outage.admin.close()
        await pgpool.aclose_pool()

    # Of psycopg_pool's own lines, only those of the connections it held when the outage
    # began (each discarded once), none of its tries.
    pools_own = [r.getMessage() for r in caplog.records if r.name == "psycopg.pool"]
    assert len(pools_own) <= pgpool.POOL_MAX_SIZE, pools_own
    assert all(line.startswith("discarding ") for line in pools_own), pools_own
    told = [r for r in caplog.records if r.name == "conversations.pgpool"]
    first, *meanwhile, back = told
    assert first.levelno == logging.WARNING
    assert first.getMessage().startswith("the database cannot be reached (connection failed")
    assert "\n" not in first.getMessage()
    # About every TOLD_EVERY_S while it lasts (its tries fail a second or so apart), never more.
    # It lasts from the first line to the last: on a loaded machine the pool can take a few
    # seconds past ``outage.end()`` to connect again, and the outage is told for those too.
    lasted_s = back.created - first.created
    assert 1 <= len(meanwhile) <= lasted_s // TOLD_EVERY_S, [r.getMessage() for r in told]
    for earlier, later in zip([first, *meanwhile], meanwhile, strict=False):
        assert later.created - earlier.created >= TOLD_EVERY_S
    for line in meanwhile:
        assert line.levelno == logging.WARNING
        so_far = re.match(
            r"the database still cannot be reached, for (\d+)s now \(", line.getMessage()
        )
        assert so_far is not None, line.getMessage()
        assert abs(int(so_far[1]) - (line.created - first.created)) <= 1
    assert back.levelno == logging.INFO
    assert re.fullmatch(r"the database is back, after \d+s", back.getMessage())
    assert lasted_s >= OUTAGE_S
