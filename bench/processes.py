"""What the benches share: Django on a database of the bench's own, the daphne under test,
and letting go of this process's database connections before it starts (their backends exit
and flush their statistics)."""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path

from chatsite.launcher import Child, Supervisor, daphne_command, start_embedded_postgres

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], share: float) -> float:
    """The value below which ``share`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def setup_django(supervisor: Supervisor, name: str) -> None:
    """Django set up as deployed (DEBUG off) on DATABASE_URL, or on an embedded PostgreSQL in
    ``.data/<name>-pg`` that ``supervisor`` stops at the end."""
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = start_embedded_postgres(
            supervisor, ROOT / ".data" / f"{name}-pg", name.replace("-", "_")
        )
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 40)
    os.environ["DJANGO_SETTINGS_MODULE"] = "chatsite.settings"
    import django

    django.setup()


def close_django_connections() -> None:
    """Close this process's Django connections and their pools."""
    from django.db import connections

    for connection in connections.all():
        connection.close()
        close_pool = getattr(connection, "close_pool", None)
        if close_pool is not None:
            close_pool()


def start_daphne(port: int, env: dict[str, str], log: Path) -> Child:
    """daphne serving the app on ``port`` (output in ``log``), once ``/healthz`` answers."""
    child = Child(
        "daphne",
        daphne_command(port),
        env,
        log_file=log,
    )
    deadline = time.monotonic() + 60
    while True:
        if child.process.poll() is not None:
            raise RuntimeError(f"daphne exited with {child.process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                if reply.status == 200:
                    return child
        except OSError:
            if time.monotonic() > deadline:
                child.stop()
                raise
            time.sleep(0.2)
