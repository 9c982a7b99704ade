"""Pooled connections that PostgreSQL has closed are not handed out.

Both pools (Django's, through the database backend ``chatsite.postgres``; the event loop's,
``conversations/pgpool.py``) keep idle connections open. When PostgreSQL restarts, or ends a
session (``pg_terminate_backend``, an idle timeout), the server says so and closes the socket,
but a pool learns it only when the connection is next used: the unit of work that draws it
fails (a message not sent, a page in error, a heartbeat or checkpoint skipped, a 503), once
for each connection the pool held, long after the database is back.

So a connection is checked as it leaves its pool. An idle connection's socket has nothing to
read unless the server has spoken — in practice, to end the session — so the usual case is one
poll of the socket, no round trip. A readable socket is tested with an empty statement; a
connection that fails it is dropped and, since what ended one session has usually ended them
all, the rest of the pool is checked at once.
"""

from __future__ import annotations

import select
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool


def server_has_spoken(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    """True when the idle connection's socket is readable (or the connection is closed)."""
    if conn.closed:
        return True
    poller = select.poll()  # not select(): descriptors past 1024 are common in a busy worker
    poller.register(conn.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


async def check_async_connection(conn: psycopg.AsyncConnection[Any]) -> None:
    """The ``check`` of the event loop's pool: raises if the server has closed ``conn``, after
    checking the rest of its pool (psycopg's pool waits a second or more between two failed
    checks for one caller: a pool of dead connections would time callers out one by one)."""
    if not server_has_spoken(conn):
        return
    try:
        await AsyncConnectionPool.check_connection(conn)
    except Exception:
        pool = getattr(conn, "_pool", None)
        if isinstance(pool, AsyncConnectionPool):
            await pool.check()
        raise
