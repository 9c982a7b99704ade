"""The API's pool (``pgpool``) connects again within a couple of seconds of the database
coming back, however long it was gone: a connection it cannot make is tried again 1 and 3 s
later, then from the start (``RECONNECT_TRIES_S``).

Before, psycopg_pool's own backoff doubled for five minutes: after an 18 s outage its next
try came about 31 s after the first, so every call (and every settlement waiting the outage
out) waited some 10 s more after the database was back. A clean-clone CI run failed on it:
a settlement was still waiting when the test gave up on it.

A real PostgreSQL made to refuse connections to the test database, the pool's sessions
ended."""

from __future__ import annotations

import asyncio
import time

import pytest

from conversations import pgpool
from tests.test_a_call_ending_during_a_database_outage_is_charged_the_providers_usage import (
    Outage,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

# Past psycopg_pool's tries at about 0, 1, 3, 7 and 15 s (each ±10 %), short of the next at 31.
OUTAGE_S = 18.0


async def _first_answer_after(started: float) -> float:
    """Seconds from ``started`` until the pool answers a statement."""
    while True:
        try:
            await pgpool.fetch_one("SELECT 1", ())
        except pgpool.DatabaseUnavailable:
            continue
        return time.monotonic() - started


async def test_the_pool_answers_within_seconds_of_the_database_coming_back() -> None:
    outage = Outage("no-session-but-the-pools")
    try:
        await pgpool.fetch_one("SELECT 1", ())
        outage.begin()
        began = time.monotonic()
        with pytest.raises(pgpool.DatabaseUnavailable):
            await pgpool.fetch_one("SELECT 1", ())  # the pool finds its sessions ended
        await asyncio.sleep(OUTAGE_S - (time.monotonic() - began))
        outage.end()
        back_after = await _first_answer_after(time.monotonic())
        assert back_after < 6.0, f"the pool came back {back_after:.1f} s after the database"
    finally:
        outage.end()
        outage.admin.close()
        await pgpool.aclose_pool()
