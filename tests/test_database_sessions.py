"""The app's database sessions, Django's and the API pool's alike: what DATABASE_URL's query
string asks for is kept, JIT compilation is off (on a PostgreSQL built with LLVM the
planner compiled two-row statements on small, never-analysed tables: 20-40 ms each), and their
sockets ask the kernel to give up on a route that drops packets (TCP keepalives and
tcp_user_timeout, from DATABASE_STALL_TIMEOUT_SECONDS)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from psycopg.conninfo import conninfo_to_dict

from conversations import pgpool

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db(transaction=True)
async def test_both_pools_run_without_jit() -> None:
    try:
        async with pgpool.connection() as conn:
            cursor = await conn.execute("SHOW jit")
            assert await cursor.fetchone() == ("off",)
    finally:
        await pgpool.aclose_pool()

    def django_jit() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW jit")
            value: str = cursor.fetchone()[0]
            return value

    assert await asyncio.to_thread(django_jit) == "off"


def _tcp_options(fileno: int) -> tuple[int, ...]:
    """The socket's keepalive switch, its keepalive timings, and its TCP_USER_TIMEOUT (ms)."""
    with socket.fromfd(fileno, socket.AF_INET, socket.SOCK_STREAM) as sock:  # a duplicate
        return (
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
        )


@pytest.mark.django_db(transaction=True)
async def test_both_pools_sockets_give_up_on_a_silent_route(settings: Any) -> None:
    # 15 s (the default): keepalive probes after 5 s idle, every 5 s; unacknowledged for 15 s,
    # the connection is closed.
    assert settings.DATABASE_STALL_TIMEOUT_SECONDS == 15.0
    expected = (1, 5, 5, 3, 15000)
    try:
        async with pgpool.connection() as conn:
            assert _tcp_options(conn.fileno()) == expected
    finally:
        await pgpool.aclose_pool()

    def django_options() -> tuple[int, ...]:
        connection.ensure_connection()
        return _tcp_options(connection.connection.fileno())

    assert await asyncio.to_thread(django_options) == expected


def test_the_urls_own_connection_parameters_are_kept_by_both_pools() -> None:
    url = (
        "postgres://chat:secret@db.example:6543/chat"
        "?sslmode=require&options=-c%20statement_timeout%3D5000&connect_timeout=9"
    )
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "from conversations import pgpool; "
        "print(json.dumps([settings.DATABASES['default']['OPTIONS'], pgpool.conninfo()], default=str))"
    )
    env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": url,
        "DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    options, conninfo = json.loads(result.stdout)
    assert options["sslmode"] == "require"
    assert options["connect_timeout"] == 9
    assert options["options"] == "-c statement_timeout=5000 -c jit=off"
    assert options["pool"]
    api = conninfo_to_dict(conninfo)
    assert api["sslmode"] == "require"
    assert api["connect_timeout"] == "9"
    assert api["options"] == "-c statement_timeout=5000 -c jit=off"
    assert api["application_name"] == "chat-api"
    assert (api["host"], api["port"], api["dbname"], api["user"]) == (
        "db.example",
        "6543",
        "chat",
        "chat",
    )
    assert "pool" not in api
