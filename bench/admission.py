"""Admission + settlement cost per request, against a bare `SELECT 1` round trip in the same run.

    .venv/bin/python bench/admission.py [--requests 2000] [--concurrency 1,50]
        [--no-prepare] [--raw] [--async-commit]

Each request is what a chat message costs the quota seam: `quota.admit` (one statement,
`usage_admit`: limits resolution, the conditional upsert of the user's running totals, the
ledger INSERT), then `quota.settle` (one statement, `usage_settle`). Both run in autocommit, so
each is one round trip that includes its COMMIT (a WAL flush: fsync). Concurrency is threads,
each holding its own connection (the pool is raised to fit, so N threads are N concurrent
sessions); the connection is checked out before timing. Each level runs twice: every request
charging ONE user (they queue on that user's row of running totals, by design), then requests spread
over 50 users. Also reported, at concurrency 1: a durable COMMIT of a one-row INSERT and the
admission statement inside an open transaction (its cost without the COMMIT).

`quota` runs both statements as prepared statements (server-side binding, prepared on their
first run on each connection); ``--no-prepare`` turns that off, to measure what it saves.
``--raw`` runs `quota.ADMIT_SQL`/`SETTLE_SQL` on a plain psycopg cursor (what a caller holding
its own psycopg connection does: no Django cursor wrapper). ``--async-commit`` sets
``synchronous_commit = off`` on the sessions, to show what durability costs (the app does not).
Uses DATABASE_URL, or an embedded PostgreSQL like `make test`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import percentile, setup_django  # noqa: E402


def ms(value: float) -> str:
    return f"{value * 1e3:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", default="1,50")
    parser.add_argument("--users", type=int, default=50, help="users of the spread run")
    parser.add_argument("--no-prepare", action="store_true")
    parser.add_argument("--raw", action="store_true")
    parser.add_argument("--async-commit", action="store_true")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]

    from chatsite.launcher import Supervisor

    supervisor = Supervisor()
    try:
        setup_django(supervisor, "bench-admission")
        from django.conf import settings

        # One session per thread (the app's pool is 20).
        options: Any = settings.DATABASES["default"]["OPTIONS"]
        options["pool"]["max_size"] = max(levels) + 5
        import psycopg
        from django.core.management import call_command
        from django.db import connection, transaction
        from django.utils import timezone

        call_command("migrate", verbosity=0)
        from conversations import quota
        from conversations.models import ModelConfig, UsageAccount, UsageRecord, User, UserLimits

        # Every limit is checked (none unlimited), none is reached.
        limits = {
            "tokens_per_day": 10**12,
            "tokens_per_month": 10**12,
            "requests_per_minute": 10**9,
            "concurrent_streams": 10**6,
        }
        users = []
        for i in range(max(1, args.users)):
            user, _ = User.objects.get_or_create(username=f"bench{i}")
            UserLimits.objects.update_or_create(user=user, defaults=limits)
            users.append(user)
        UsageRecord.objects.filter(user__in=users).delete()
        UsageAccount.objects.filter(user__in=users).delete()
        model = ModelConfig.objects.get(name="deepseek-chat")
        usage = {
            "prompt_tokens": 120,
            "completion_tokens": 300,
            "total_tokens": 420,
            "prompt_cache_hit_tokens": 64,
            "prompt_cache_miss_tokens": 56,
        }
        local = threading.local()

        def session() -> Any:
            """This thread's connection, checked out and configured once."""
            if not getattr(local, "ready", False):
                connection.ensure_connection()
                if args.async_commit:
                    with connection.cursor() as cursor:
                        cursor.execute("SET synchronous_commit = off")
                raw = connection.connection
                # quota sets 0 (prepare at once) where Django left None (never).
                raw.prepare_threshold = 10**9 if args.no_prepare else 0
                local.cursor = psycopg.Cursor(raw)  # server-side binding
                local.ready = True
            return local.cursor

        def close_sessions(pool: ThreadPoolExecutor, threads: int) -> None:
            """Give every thread's connection back to the pool (one task per thread)."""
            barrier = threading.Barrier(threads)

            def close() -> None:
                barrier.wait()
                connection.close()
                local.ready = False

            list(pool.map(lambda _: close(), range(threads)))

        def timed(fn: Callable[[], object]) -> float:
            session()
            started = time.perf_counter()
            fn()
            return time.perf_counter() - started

        def select_one() -> None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()

        def admit(user: User) -> int:
            if not args.raw:
                return quota.admit(
                    user, model, purpose="chat", prompt_tokens=120, max_tokens=1000
                ).pk
            params = quota.admission_params(
                user.pk, model.pk, purpose="chat", prompt_tokens=120, max_tokens=1000
            )
            row = local.cursor.execute(quota.ADMIT_SQL, params).fetchone()
            return quota.admission_result(row, params).pk

        def settle(record_id: int) -> None:
            if not args.raw:
                quota.settle(record_id, outcome="complete", usage=usage)
                return
            params = quota.settlement_params(record_id, outcome="complete", usage=usage)
            assert local.cursor.execute(quota.SETTLE_SQL, params).fetchone()[0]

        def admit_and_settle(index: int, spread: bool) -> tuple[float, float]:
            user = users[index % len(users)] if spread else users[0]
            session()
            started = time.perf_counter()
            record_id = admit(user)
            admitted = time.perf_counter()
            settle(record_id)
            return admitted - started, time.perf_counter() - admitted

        def commit_probe() -> None:
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO bench_commit_probe (v) VALUES (1)")

        def admit_without_commit() -> float:
            session()
            with transaction.atomic():
                # Untimed: BEGIN, and this minute's counter row (the first admission of a
                # minute inserts it; rolled back, every one would).
                admit(users[0])
                started = time.perf_counter()
                admit(users[0])
                elapsed = time.perf_counter() - started
                transaction.set_rollback(True)
            return elapsed

        mode = (
            "ADMIT_SQL/SETTLE_SQL on a plain psycopg cursor" if args.raw else "quota.admit/settle"
        )
        print(
            f"# {mode}; prepared statements {'off' if args.no_prepare else 'on'}; "
            f"synchronous_commit {'off' if args.async_commit else 'on'}"
        )
        print(
            "| concurrency | users | SELECT 1 p50 | admit p50 | admit p99 | settle p50 | "
            "settle p99 | admit / SELECT 1 | settle / SELECT 1 |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for concurrency in levels:
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(lambda _: timed(select_one), range(concurrency * 4)))  # warm up
                for spread in (False, True):
                    baseline = list(pool.map(lambda _: timed(select_one), range(args.requests)))
                    results = list(
                        pool.map(lambda i, s=spread: admit_and_settle(i, s), range(args.requests))
                    )
                    admits = [a for a, _ in results]
                    settles = [s for _, s in results]
                    base = statistics.median(baseline)
                    print(
                        f"| {concurrency} | {len(users) if spread else 1} | {ms(base)} ms | "
                        f"{ms(statistics.median(admits))} ms | {ms(percentile(admits, 0.99))} ms | "
                        f"{ms(statistics.median(settles))} ms | {ms(percentile(settles, 0.99))} ms | "
                        f"{statistics.median(admits) / base:.1f}x | "
                        f"{statistics.median(settles) / base:.1f}x |",
                        flush=True,
                    )
                close_sessions(pool, concurrency)

        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS bench_commit_probe (id bigserial PRIMARY KEY, v int)"
            )
        with ThreadPoolExecutor(1) as pool:
            baseline = list(pool.map(lambda _: timed(select_one), range(args.requests)))
            commits = list(pool.map(lambda _: timed(commit_probe), range(args.requests)))
            inside = list(pool.map(lambda _: admit_without_commit(), range(args.requests)))
            close_sessions(pool, 1)
        base = statistics.median(baseline)
        print()
        print("| concurrency 1 | p50 | p99 | / SELECT 1 |")
        print("| --- | --- | --- | --- |")
        for name, values in (
            ("SELECT 1", baseline),
            ("INSERT one row, autocommit (its COMMIT)", commits),
            ("admission statement in an open transaction (no COMMIT)", inside),
        ):
            print(
                f"| {name} | {ms(statistics.median(values))} ms | {ms(percentile(values, 0.99))} ms "
                f"| {statistics.median(values) / base:.1f}x |"
            )

        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE bench_commit_probe")
        # Every admission was settled to 420 tokens: the counters must say so, per user.
        day = quota.periods_at(timezone.now()).day
        for user in users:
            records = UsageRecord.objects.filter(user=user, day_start=day)
            account = UsageAccount.objects.filter(user=user, day_start=day).first()
            assert records.filter(state="reserved").count() == 0, "a reservation left over"
            assert (account.day_used if account else 0) == records.count() * 420, "out of step"
        UsageRecord.objects.filter(user__in=users).delete()
        UsageAccount.objects.filter(user__in=users).delete()
    finally:
        supervisor.stop_all()


if __name__ == "__main__":
    main()
