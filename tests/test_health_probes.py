from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from django.test import Client

from chatsite.launcher import daphne_command

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.django_db
def test_healthz_answers_without_touching_anything() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
def test_readyz_reports_a_migrated_database_and_a_working_channel_layer() -> None:
    response = Client().get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "channel_layer": "ok"}}


def test_readyz_reports_a_down_database() -> None:
    """A real server process whose database is not there: alive, but not ready."""
    port, dead_db_port = free_port(), free_port()
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{dead_db_port}/nothing",
        "PORT": str(port),
    }
    env.pop("REDIS_URL", None)
    server = subprocess.Popen(
        daphne_command(port),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"{base}/healthz").status_code == 200
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        response = httpx.get(f"{base}/readyz", timeout=30)
        assert response.status_code == 503
        assert response.json()["checks"]["database"] == "down"
        assert response.json()["checks"]["channel_layer"] == "ok"
    finally:
        server.terminate()
        server.wait(10)
