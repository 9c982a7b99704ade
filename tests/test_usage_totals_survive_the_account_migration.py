"""Migration 0009 (one ``UsageAccount`` row per user) keeps what users have used, both ways.

Forward, each user's current day, month and minute counters and their open streams become
their account row (older periods stay in the ledger only); backward, the account becomes
counter rows again, and each direction leaves its own admission function in place. A
deployment that upgrades, or rolls back, mid-day must not hand anyone a fresh allowance.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = ("conversations", "0008_sharing_settings")
ACCOUNT = ("conversations", "0009_usage_account")

TODAY = datetime(2026, 11, 26, tzinfo=UTC)
YESTERDAY = TODAY - timedelta(days=1)
THIS_MONTH = datetime(2026, 11, 1, tzinfo=UTC)
THIS_MINUTE = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)
STREAMS_START = datetime(2000, 1, 1, tzinfo=UTC)


def migrate_to(target: tuple[str, str]) -> Any:
    """Migrate the conversations app to ``target``; the app registry of that state."""
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    executor.loader.build_graph()
    return executor.loader.project_state([target]).apps


def admit_arguments() -> int:
    """How many arguments the installed ``usage_admit`` takes (0009's takes 14, 0008's 15)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pronargs FROM pg_proc WHERE proname = 'usage_admit'")
        (count,) = cursor.fetchone()
    return int(count)


@pytest.fixture
def latest_after() -> Iterator[None]:
    """Whatever the test does to the schema, later tests find it fully migrated."""
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("conversations")
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(latest)


@pytest.mark.django_db(transaction=True)
def test_counters_become_the_account_and_come_back_on_the_way_down(latest_after: None) -> None:
    old = migrate_to(BEFORE)
    user_model = old.get_model("conversations", "User")
    counter = old.get_model("conversations", "UsageCounter")
    busy = user_model.objects.create(username="busy")
    idle = user_model.objects.create(username="idle")
    for period, start, used in [
        ("day", YESTERDAY, 9_000),  # an older period: the ledger keeps it, the account does not
        ("day", TODAY, 1_500),
        ("month", THIS_MONTH, 42_000),
        ("minute", THIS_MINUTE, 3),
        ("streams", STREAMS_START, 2),
    ]:
        counter.objects.create(user=busy, period=period, start=start, used=used)

    new = migrate_to(ACCOUNT)
    assert admit_arguments() == 14
    account = new.get_model("conversations", "UsageAccount")
    row = account.objects.get(user_id=busy.pk)
    assert (row.day_start, row.day_used) == (TODAY, 1_500)
    assert (row.month_start, row.month_used) == (THIS_MONTH, 42_000)
    assert (row.minute_start, row.minute_used) == (THIS_MINUTE, 3)
    assert row.streams == 2
    assert not account.objects.filter(user_id=idle.pk).exists()  # nothing used, no row

    # A call admitted after the upgrade adds to the carried-over totals.
    account.objects.filter(user_id=busy.pk).update(day_used=1_700, streams=3)

    old = migrate_to(BEFORE)
    assert admit_arguments() == 15
    counter = old.get_model("conversations", "UsageCounter")
    back = {
        (c.period, c.start): c.used for c in counter.objects.filter(user_id=busy.pk).order_by("id")
    }
    assert back == {
        ("day", TODAY): 1_700,
        ("month", THIS_MONTH): 42_000,
        ("minute", THIS_MINUTE): 3,
        ("streams", STREAMS_START): 3,
    }
    assert not counter.objects.filter(user_id=idle.pk).exists()
