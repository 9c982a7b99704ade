"""Admission + settlement cost per request, against a bare `SELECT 1` round trip in the same run.

    .venv/bin/python bench/admission.py [--requests 2000] [--concurrency 1,50]

Each request is what a chat message costs the quota seam: `quota.admit` inside a transaction
(policy resolution, counter upsert, the conditional reservation UPDATE, the ledger INSERT), then
`quota.settle` (SELECT FOR UPDATE, ledger UPDATE, counter UPDATE). Concurrency is threads, each
with its own pooled connection, all charging ONE user (the worst case: they queue on the same
counter rows). Uses DATABASE_URL, or an embedded PostgreSQL like `make test`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", default="1,50")
    args = parser.parse_args()

    from chatsite.launcher import Supervisor, start_embedded_postgres

    supervisor = Supervisor()
    try:
        if not os.environ.get("DATABASE_URL"):
            os.environ["DATABASE_URL"] = start_embedded_postgres(
                supervisor, ROOT / ".data" / "bench-admission-pg", "bench_admission"
            )
        os.environ.setdefault("DEBUG", "0")
        os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 40)
        os.environ["DJANGO_SETTINGS_MODULE"] = "chatsite.settings"
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection, transaction

        call_command("migrate", verbosity=0)
        from conversations import quota
        from conversations.models import (
            ModelConfig,
            Policy,
            UsageCounter,
            UsageRecord,
            User,
            UserLimits,
        )

        user, _ = User.objects.get_or_create(username="bench")
        # Every limit is checked (none unlimited), none is reached.
        limits = {
            "tokens_per_day": 10**12,
            "tokens_per_month": 10**12,
            "requests_per_minute": 10**9,
            "concurrent_streams": 10**6,
        }
        UserLimits.objects.update_or_create(user=user, defaults=limits)
        UsageRecord.objects.filter(user=user).delete()
        UsageCounter.objects.filter(user=user).delete()
        model = ModelConfig.objects.get(name="deepseek-chat")
        assert Policy.objects.filter(is_default=True).exists()
        usage = {
            "prompt_tokens": 120,
            "completion_tokens": 300,
            "total_tokens": 420,
            "prompt_cache_hit_tokens": 64,
            "prompt_cache_miss_tokens": 56,
        }

        def select_one() -> float:
            started = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
            elapsed = time.perf_counter() - started
            connection.close()
            return elapsed

        def admit_and_settle() -> tuple[float, float]:
            started = time.perf_counter()
            with transaction.atomic():
                record = quota.admit(
                    user, model, purpose="chat", prompt_tokens=120, max_tokens=1000
                )
            admitted = time.perf_counter()
            quota.settle(record.pk, outcome="complete", usage=usage)
            settled = time.perf_counter()
            connection.close()
            return admitted - started, settled - admitted

        print(
            f"{'concurrency':>11} {'SELECT 1 p50':>13} {'admit p50':>10} {'admit p99':>10} {'settle p50':>11} {'settle p99':>11} {'admit/SELECT1 p50':>18}"
        )
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            with ThreadPoolExecutor(concurrency) as pool:
                baseline = list(pool.map(lambda _: select_one(), range(args.requests)))
                results = list(pool.map(lambda _: admit_and_settle(), range(args.requests)))
            admits = [a for a, _ in results]
            settles = [s for _, s in results]
            base = statistics.median(baseline)
            print(
                f"{concurrency:>11} {base * 1e3:>11.3f}ms {statistics.median(admits) * 1e3:>8.3f}ms {percentile(admits, 0.99) * 1e3:>8.3f}ms "
                f"{statistics.median(settles) * 1e3:>9.3f}ms {percentile(settles, 0.99) * 1e3:>9.3f}ms {statistics.median(admits) / base:>17.1f}x"
            )
        day = UsageCounter.objects.get(
            user=user, period="day", start=quota.periods_at(django.utils.timezone.now()).day
        )
        assert (
            day.used == UsageRecord.objects.filter(user=user, day_start=day.start).count() * 420
        ), "counters out of step"
        UsageRecord.objects.filter(user=user).delete()
        UsageCounter.objects.filter(user=user).delete()
    finally:
        supervisor.stop_all()


if __name__ == "__main__":
    main()
