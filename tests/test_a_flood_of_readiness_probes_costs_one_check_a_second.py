"""/readyz is public (the proxy passes every path on) and each check costs 10-100 ms: the
migration plan built from the database, and a channel-layer round trip. A flood of probes cost
one check each. Now an answer is reused for about a second, and the check made again after it:
a change (here, a migration no longer applied) shows within a couple of seconds."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test import Client

from conversations import views

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def probe() -> dict[str, object]:
    body: dict[str, object] = Client().get("/readyz").json()
    return body


def test_probes_within_a_second_share_one_check() -> None:
    ready = {"status": "ok", "checks": {"database": "ok", "channel_layer": "ok"}}
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, app, name, applied FROM django_migrations ORDER BY id DESC")
        last = cursor.fetchone()
    assert probe() == ready
    assert views._readiness is not None
    checked = views._readiness[0]  # when the check this answer came from started
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE id = %s", [last[0]])
    try:
        # Within the second the answer checked stands, however many probes ask.
        while time.monotonic() - checked < views.READINESS_FRESH_SECONDS * 0.8:
            assert probe() == ready
        time.sleep(max(0.0, checked + views.READINESS_FRESH_SECONDS * 1.1 - time.monotonic()))
        assert probe() == {
            "status": "unavailable",
            "checks": {"database": "pending-migrations", "channel_layer": "ok"},
        }
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO django_migrations (id, app, name, applied) VALUES (%s, %s, %s, %s)",
                last,
            )
    time.sleep(views.READINESS_FRESH_SECONDS * 1.1)
    assert probe() == ready
