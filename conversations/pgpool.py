"""An asyncio PostgreSQL pool for the API's hot path: raw statements, no ORM, no thread hop.

The API (``conversations/api_asgi.py``) runs a handful of fixed statements per call. Going
through the ORM would mean a thread per unit of work and query compilation per statement;
here each statement is one round trip on a pooled psycopg 3 connection in autocommit mode,
prepared server-side after its first use on that connection. The pool reads the same
database settings as Django (``settings.DATABASES["default"]``).

A database that cannot be reached is reported as :class:`DatabaseUnavailable` after at most
:data:`ACQUIRE_TIMEOUT_S` — callers answer 503, they never hang. So is a statement that gets no
answer within ``DATABASE_STALL_TIMEOUT_SECONDS`` (a stalled connection: a route that drops
packets without a word), and its connection is closed, never pooled again. The writes that must
not be lost (a reply's final write, every settlement of a call the provider may have billed) go
through :func:`outlasting_outage` instead, which tries them again until the database is back.

While the database cannot be reached the pool tries to connect about once a second; the log
says the outage once when it begins, at most once in ``DATABASE_OUTAGE_LOG_SECONDS`` while it
lasts, and once when it ends (:class:`_Outage`), not each try.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Self, TypeVar

import psycopg
from django.conf import settings
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from chatsite.postgres import check_async_connection
from conversations.errors import ChatError

logger = logging.getLogger("conversations.pgpool")
T = TypeVar("T")

# Enough for a worker at full load: each call holds a connection for one statement at a time.
POOL_MIN_SIZE = 2
POOL_MAX_SIZE = 10
ACQUIRE_TIMEOUT_S = 5.0
# A connection that cannot be made is tried again 1 and 3 s later (psycopg_pool's backoff),
# then from the start (:func:`_try_again_from_the_start`): the pool is back within a couple
# of seconds of the database, however long it was gone. (psycopg_pool's own backoff doubles
# for five minutes: after a 20 s outage its next try could be 11 s after the database was
# back, and every call waited for it.)
RECONNECT_TRIES_S = 3.0
POOL_NAME = "api"

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncConnectionPool] = (
    weakref.WeakKeyDictionary()
)


class _Outage:
    """The database out of a loop's pool's reach, as the log tells it: a warning at the first
    try to connect that fails, then at most one every ``DATABASE_OUTAGE_LOG_SECONDS`` while
    tries fail (saying how long so far), and a line at the first connection made after it.
    The tries themselves, about one a second, are not logged (:class:`_TriesToldByTheOutage`)."""

    def __init__(self) -> None:
        self.began: float | None = None
        self.told_at = 0.0

    def try_failed(self, error: Exception) -> None:
        now = time.monotonic()
        if self.began is None:
            self.began = self.told_at = now
            logger.warning(
                "the database cannot be reached (%s); trying again until it is back",
                _first_line(error),
            )
        elif now - self.told_at >= settings.DATABASE_OUTAGE_LOG_SECONDS:
            self.told_at = now
            logger.warning(
                "the database still cannot be reached, for %.0fs now (%s)",
                now - self.began,
                _first_line(error),
            )

    def connected(self) -> None:
        if self.began is not None:
            logger.info("the database is back, after %.0fs", time.monotonic() - self.began)
            self.began = None


def _first_line(error: Exception) -> str:
    """What refused, without libpq's hints on further lines."""
    return (str(error).splitlines() or [type(error).__name__])[0]


_outages: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Outage] = (
    weakref.WeakKeyDictionary()
)


def out_of_reach() -> bool:
    """Whether the running loop's pool cannot connect to the database now (its last try to
    failed): a statement that failed then failed for that, not for its own rows."""
    outage = _outages.get(asyncio.get_running_loop())
    return outage is not None and outage.began is not None


class _PoolConnection(psycopg.AsyncConnection[Any]):
    """A connection of the pool: each try to make one tells the loop's :class:`_Outage`."""

    @classmethod
    async def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
        outage = _outages.setdefault(asyncio.get_running_loop(), _Outage())
        try:
            conn = await super().connect(conninfo, **kwargs)
        except psycopg.OperationalError as error:
            outage.try_failed(error)
            raise
        outage.connected()
        return conn


class _TriesToldByTheOutage(logging.Filter):
    """Leaves out psycopg_pool's own lines for the API pool's failed tries to connect and its
    rounds of tries given up (about one a second while the database is away): the pool's
    :class:`_Outage` tells of it instead."""

    TOLD = frozenset(
        {"error connecting in %r: %s", "reconnection attempt in pool %r failed after %s sec"}
    )

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        ours = isinstance(args, tuple) and args[:1] == (POOL_NAME,)
        return not (ours and record.msg in self.TOLD)


logging.getLogger("psycopg.pool").addFilter(_TriesToldByTheOutage())


class DatabaseUnavailable(ChatError):
    code = "database_unavailable"
    status = 503
    default_message = "The service is temporarily unavailable; try again in a moment."


DJANGO_ONLY_OPTIONS = frozenset(
    {"pool", "isolation_level", "server_side_binding", "assume_role", "cursor_factory"}
)


def conninfo() -> str:
    """Django's default database as a libpq connection string (never logged: it may hold the
    password)."""
    db: dict[str, Any] = settings.DATABASES["default"]
    # The connection parameters among Django's OPTIONS (sslmode, options, ...), as Django's
    # own backend passes them to psycopg; the rest are Django's.
    options = {
        name: value
        for name, value in (db.get("OPTIONS") or {}).items()
        if name not in DJANGO_ONLY_OPTIONS
    }
    params: dict[str, Any] = {
        "dbname": db.get("NAME") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": str(db["PORT"]) if db.get("PORT") else None,
        "connect_timeout": 5,
        **options,
        "application_name": "chat-api",
    }
    return make_conninfo(**{k: v for k, v in params.items() if v is not None})


async def get_pool() -> AsyncConnectionPool:
    """The running loop's pool, created and opened on first use (without waiting for its
    first connections: a caller waits for one only when it needs it)."""
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        pool = AsyncConnectionPool(
            conninfo(),
            connection_class=_PoolConnection,
            # Autocommit: every statement is its own transaction, so no BEGIN/COMMIT trips;
            # prepare_threshold=0: each fixed statement is prepared on its first use.
            kwargs={"autocommit": True, "prepare_threshold": 0},
            # One the server has closed (a restart) is not handed out again.
            check=check_async_connection,
            min_size=POOL_MIN_SIZE,
            max_size=POOL_MAX_SIZE,
            timeout=ACQUIRE_TIMEOUT_S,
            reconnect_timeout=RECONNECT_TRIES_S,
            reconnect_failed=_try_again_from_the_start,
            name=POOL_NAME,
            open=False,
        )
        _pools[loop] = pool
        # A server that is down is retried in the background; callers time out meanwhile.
        await pool.open(wait=False)
    return pool


async def _try_again_from_the_start(pool: AsyncConnectionPool) -> None:
    """A pool that gave up a connection's tries (``RECONNECT_TRIES_S``) starts another
    connection's at once: ``check`` grows a pool that is short of connections."""
    if not pool.closed:
        await pool.check()


@asynccontextmanager
async def connection() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A pooled connection, or :class:`DatabaseUnavailable` within ``ACQUIRE_TIMEOUT_S``."""
    pool = await get_pool()
    try:
        async with pool.connection() as conn:
            yield conn
    except (PoolTimeout, psycopg.OperationalError) as error:
        raise DatabaseUnavailable() from error


async def _run(
    sql: str,
    params: Sequence[Any] | dict[str, Any],
    read: Callable[[psycopg.AsyncCursor[Any]], Awaitable[T]],
) -> T:
    """One statement on a pooled connection, and what ``read`` takes from its cursor; or
    :class:`DatabaseUnavailable` once it has waited ``DATABASE_STALL_TIMEOUT_SECONDS`` for
    its answer.

    The kernel does not notice a stalled route by itself soon enough, nor at all behind a
    middlebox that acknowledges what it no longer forwards, so the wait is bounded here. Past
    the deadline, psycopg sends the server a cancel request and waits up to 10 s more for the
    statement to end (psycopg 3.3 closes the connection if it does not: before, the task's
    cancellation was swallowed for ever, psycopg issue #1371). Either way the connection is
    closed: whether its statement ran is unknown, and it must not be handed out again. A
    statement that did commit is found so by the caller's retry (the writes are idempotent).
    """
    async with connection() as conn:
        try:
            async with asyncio.timeout(settings.DATABASE_STALL_TIMEOUT_SECONDS):
                cursor = await conn.execute(sql, params)  # type: ignore[arg-type]
                return await read(cursor)
        except TimeoutError as error:
            await conn.close()  # the pool discards a closed connection
            logger.warning(
                "a statement got no answer in %.1fs: its connection closed",
                settings.DATABASE_STALL_TIMEOUT_SECONDS,
            )
            raise DatabaseUnavailable() from error


async def fetch_one(sql: str, params: Sequence[Any] | dict[str, Any]) -> tuple[Any, ...] | None:
    """One statement, its first row (or None)."""
    return await _run(sql, params, lambda cursor: cursor.fetchone())


async def _rowcount(cursor: psycopg.AsyncCursor[Any]) -> int:
    return cursor.rowcount


async def execute(sql: str, params: Sequence[Any] | dict[str, Any]) -> int:
    """One statement without rows to read; the rows it affected."""
    return await _run(sql, params, _rowcount)


async def fetch_all(sql: str, params: Sequence[Any] | dict[str, Any]) -> list[tuple[Any, ...]]:
    return await _run(sql, params, lambda cursor: cursor.fetchall())


# Waits between the tries of a write that must not be lost; the last is repeated.
OUTAGE_RETRY_WAITS = (0.5, 1.0, 2.0, 4.0)

# The tasks writing through :func:`outlasting_outage` (the shutdown drain gives them its grace
# period, as it gives running replies).
_writing: set[asyncio.Task[Any]] = set()


def writes_under_way() -> list[asyncio.Task[Any]]:
    """The running loop's tasks whose write (:func:`outlasting_outage`) has not been made yet:
    under way, or waiting for the database to come back."""
    loop = asyncio.get_running_loop()
    return [task for task in _writing if task.get_loop() is loop and not task.done()]


async def outlasting_outage(what: str, write: Callable[[], Awaitable[T]]) -> T:
    """``write()`` (statements on this pool), tried again for as long as the database cannot
    be reached (a restart, an upgrade, sessions ended): what it writes is only in this
    process's memory, and is lost if it gives up. Only the process going away (SIGTERM's grace
    period: :func:`writes_under_way`) ends the wait.

    The first try is the write alone: no round trip more while the database is up. A try whose
    answer was lost may have committed all the same, so ``write`` must be idempotent (the
    settlement is: ``usage_settle`` settles a reserved row only, once).
    """
    task = asyncio.current_task()
    assert task is not None
    _writing.add(task)  # from the first try: a shutdown may come while it is under way
    try:
        for attempt in itertools.count():
            try:
                return await write()
            except (DatabaseUnavailable, psycopg.OperationalError) as error:
                delay = OUTAGE_RETRY_WAITS[min(attempt, len(OUTAGE_RETRY_WAITS) - 1)]
                if attempt < len(OUTAGE_RETRY_WAITS) or attempt % 10 == 0:  # not every 4 s
                    logger.warning(
                        "%s failed (%s); again in %.1fs", what, type(error).__name__, delay
                    )
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")
    finally:
        _writing.discard(task)


async def aclose_pool() -> None:
    """Close the running loop's pool (tests, shutdown)."""
    pool = _pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.close()
