"""The ledger's and the audit log's CSV exports are sent as their rows are read, a batch at a
time, with the same lines as when they were built whole. Built whole in the worker, a 90-day
export of a busy ledger held every line at once and sent nothing until the last row was read
(long enough for a proxy to give up on it)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from conversations.models import (
    ApiKey,
    AuditEntry,
    Conversation,
    ModelConfig,
    UsageRecord,
    User,
)
from simulator.testing import running_simulator
from tests import servers
from tests.servers import daphne_worker, session_cookie
from tests.support import SIM_KEY, client_for, downloaded, make_user

LEDGER_HEADER = (
    "created_at,user,model,purpose,state,outcome,prompt_tokens,cache_hit_tokens,"
    "cache_miss_tokens,completion_tokens,reasoning_tokens,total_tokens,reserved_tokens,"
    "cost_usd,estimated,conversation,api_key\r\n"
)


def dated(moment: datetime) -> str:
    return timezone.localtime(moment).isoformat()


@pytest.mark.django_db
def test_the_ledger_export_has_the_lines_it_had(staff: User, chat_model: ModelConfig) -> None:
    ops = make_user("@ops")  # a cell a spreadsheet would take for a formula
    key = ApiKey.objects.create(user=ops, name="ci", prefix="sk-team-abcd", hashed="x" * 64)
    chat = Conversation.objects.create(owner=ops, model=chat_model, title="Notes")
    now = timezone.now()
    rows = [
        UsageRecord(
            user=ops,
            model=chat_model,
            purpose="chat",
            conversation=chat,
            state="settled",
            outcome="complete",
            prompt_tokens=1200,
            cache_hit_tokens=1000,
            cache_miss_tokens=200,
            completion_tokens=300,
            reasoning_tokens=100,
            total_tokens=1500,
            cost=Decimal("0.00012345"),
        ),
        UsageRecord(
            user=ops,
            model=chat_model,
            purpose="api",
            api_key=key,
            state="settled",
            outcome="failed",
            prompt_tokens=10,
            cache_miss_tokens=10,
            completion_tokens=5,
            total_tokens=15,
            estimated=True,
        ),
        UsageRecord(user=None, username="bob", model=chat_model, purpose="title", state="settled"),
        UsageRecord(user=staff, model=chat_model, purpose="chat", reserved_tokens=4096),
    ]
    when = [now - timedelta(hours=hours_ago) for hours_ago in (5, 4, 3, 2)]
    for row, moment in zip(rows, when, strict=True):
        row.save()
        UsageRecord.objects.filter(pk=row.pk).update(created_at=moment)
    # Outside the 30 days shown: not exported.
    UsageRecord.objects.filter(pk=rows[0].pk).update(created_at=now - timedelta(days=40))

    export = client_for(staff).get("/admin/usage/export.csv")

    assert export["Content-Type"] == "text/csv"
    assert export["Content-Disposition"] == 'attachment; filename="usage.csv"'
    assert downloaded(export) == (
        LEDGER_HEADER
        + f"{dated(when[1])},'@ops,deepseek-chat,api,settled,failed,10,0,10,5,0,15,0,0.00000000,True,,"
        "sk-team-abcd\r\n"
        f"{dated(when[2])},bob (deleted),deepseek-chat,title,settled,,0,0,0,0,0,0,0,0.00000000,False,,\r\n"
        f"{dated(when[3])},sam,deepseek-chat,chat,reserved,,0,0,0,0,0,0,4096,0.00000000,False,,\r\n"
    )
    UsageRecord.objects.filter(pk=rows[0].pk).update(created_at=when[0])
    export = client_for(staff).get("/admin/usage/export.csv", {"user": ops.pk, "purpose": "chat"})
    assert downloaded(export) == (
        LEDGER_HEADER
        + f"{dated(when[0])},'@ops,deepseek-chat,chat,settled,complete,1200,1000,200,300,100,1500,0,"
        f"0.00012345,False,{chat.pk},\r\n"
    )


@pytest.mark.django_db
def test_the_audit_export_has_the_lines_it_had(staff: User) -> None:
    first = AuditEntry.objects.create(
        actor=staff,
        actor_name="sam",
        action="change",
        target_type="policy",
        target_id="7",
        target_repr="=HYPERLINK(1)",
        before={"tokens_per_day": None, "all_models": True},
        after={"tokens_per_day": 1000, "all_models": True},
    )
    second = AuditEntry.objects.create(
        actor_name="", action="delete", target_type="apikey", target_id="3", target_repr="ci"
    )
    AuditEntry.objects.filter(pk=first.pk).update(at=timezone.now() - timedelta(hours=2))
    first.refresh_from_db()

    export = client_for(staff).post(
        "/admin/conversations/auditentry/",
        {"action": "export_csv", "_selected_action": [first.pk, second.pk]},
    )

    assert export["Content-Type"] == "text/csv"
    assert export["Content-Disposition"] == 'attachment; filename="audit.csv"'
    before = json.dumps(first.before).replace('"', '""')
    after = json.dumps(first.after).replace('"', '""')
    assert downloaded(export) == (
        "at,actor,action,target_type,target_id,target,changes,before,after\r\n"
        f"{timezone.localtime(second.at).isoformat()},,delete,apikey,3,ci,,,\r\n"
        f"{timezone.localtime(first.at).isoformat()},sam,change,policy,7,'=HYPERLINK(1),"
        f'"tokens_per_day: blank -> 1,000","{before}","{after}"\r\n'
    )


ROWS = 20_000


def fill_the_ledger(user: User, model: ModelConfig, rows: int) -> None:
    """``rows`` calls of ``user``, one a second back from now (the newest is call 1), in one
    statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {UsageRecord._meta.db_table} (user_id, username, model_id, purpose,
            state, reserved_tokens, outcome, prompt_tokens, cache_hit_tokens, cache_miss_tokens,
            completion_tokens, reasoning_tokens, total_tokens, cost, estimated, holds_stream,
            output_base_chars, created_at)
            SELECT %s, '', %s, 'chat', 'settled', 0, 'complete', n, 0, n, 50, 0, n + 50,
            0, false, false, 0, now() - make_interval(secs => n)
            FROM generate_series(1, %s) AS n""",
            [user.pk, model.pk, rows],
        )


def waiting_for_the_ledger(locker: psycopg.Connection) -> bool:
    """Whether another session waits for a lock on the ledger (``locker``'s). Its statement
    waits while it is parsed, so pg_stat_activity still shows the one before."""
    row = locker.execute(
        "SELECT count(*) FROM pg_locks WHERE relation = %s::regclass AND NOT granted",
        [UsageRecord._meta.db_table],
    ).fetchone()
    return bool(row and row[0])


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(180)
def test_the_ledger_export_starts_before_its_rows_are_read(chat_model: ModelConfig) -> None:
    staff = make_user("sam", is_staff=True, is_superuser=True)
    fill_the_ledger(staff, chat_model, ROWS)
    cookie = session_cookie(staff)
    with (
        running_simulator(api_key=SIM_KEY) as upstream,
        daphne_worker(upstream, SIM_KEY) as base,
        httpx.Client(base_url=base, cookies={"sessionid": cookie}, timeout=20) as client,
        psycopg.connect(servers.test_database_url()) as locker,
    ):
        # No row of the ledger can be read until the lock is released.
        locker.execute(f"LOCK TABLE {UsageRecord._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        try:
            with client.stream("GET", "/admin/usage/export.csv") as response:
                assert response.status_code == 200
                assert "content-length" not in response.headers
                assert response.headers["transfer-encoding"] == "chunked"
                parts = response.iter_bytes()
                first = next(parts)
                assert first.decode() == LEDGER_HEADER
                # Sent, and the worker has gone on to read the rows, held by the lock.
                deadline = time.monotonic() + 20
                while not waiting_for_the_ledger(locker):
                    assert time.monotonic() < deadline, "the worker never went on to the rows"
                    time.sleep(0.1)
                locker.rollback()
                body = (first + b"".join(parts)).decode()
        except httpx.ReadTimeout:
            pytest.fail("nothing of the export arrived before its rows could be read")
        finally:
            locker.rollback()

    lines = body.split("\r\n")
    assert lines[0] + "\r\n" == LEDGER_HEADER and lines[-1] == ""
    # Every call once, oldest first, across every batch.
    assert [int(line.split(",")[6]) for line in lines[1:-1]] == list(range(ROWS, 0, -1))
