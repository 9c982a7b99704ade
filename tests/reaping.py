"""What the tests of a reply reaped while its task lives share: a worker cut off from
PostgreSQL through ``tests.pgproxy``, its reply given up on by another worker's reaper, while
its task streams on. The worker is this test process (``proxy``, ``reaped_while_cut_off``), or
a daphne process beside a second one on Redis (``worker_proxy``, ``holder_and_other``).

Fixtures are used by name: a test module imports them (``no_heartbeat``, ``proxy``,
``worker_proxy``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from conversations import actions
from conversations.models import Conversation, Message, User
from simulator.testing import running_simulator
from tests import servers
from tests.pgproxy import PgProxy, pg_proxy
from tests.servers import daphne_worker, redis_url
from tests.support import SIM_KEY, Socket, open_socket

ANSWER = " ".join(f"word{i}" for i in range(600))  # ~15 s at the slow simulator's pace
# A daphne worker's heartbeat and reaper, fast enough for a test.
TIMERS = {"GENERATION_HEARTBEAT_SECONDS": "1", "GENERATION_STALE_SECONDS": "3"}


@pytest.fixture
def no_heartbeat(settings: Any) -> None:
    """This process neither heartbeats nor reaps during the test (its rows go silent as a cut
    off worker's do); the test reaps, as another worker's reaper would."""
    settings.GENERATION_HEARTBEAT_SECONDS = 3600


@pytest.fixture
def proxy(proxied_pool: PgProxy, generation_service: Any) -> Iterator[PgProxy]:
    """The proxy, restored before the generation service stops (its final writes end)."""
    yield proxied_pool
    proxied_pool.restore()


async def until(condition: Any, timeout: float = 30) -> Any:
    """``condition`` (run in a thread: it may read the database) once it is true."""
    deadline = time.monotonic() + timeout
    while not (found := await sync_to_async(condition)()):
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.1)
    return found


async def streaming_reply(
    user: User, conversation: Conversation, answer: str = ANSWER
) -> tuple[Socket, str]:
    """A socket of ``user`` that asked for ``answer``, and the reply's id, once the reply
    streams and a checkpoint of it is saved."""
    socket = await open_socket(user, conversation)
    await socket.send(
        {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={answer}]]"}
    )
    await socket.until_type("reply.delta")
    reply_id = socket.of_type("message.created")[1]["message"]["id"]
    await until(lambda: Message.objects.get(pk=reply_id).content != "")
    return socket, reply_id


async def reaped_while_cut_off(proxy: PgProxy, reply_id: str) -> Message:
    """Cut the worker off, let its row go silent, reap it as another worker would."""
    await asyncio.to_thread(proxy.cut)
    await asyncio.sleep(1.0)  # older than the reaper's delay below
    reaped = await sync_to_async(actions.reap_stale_replies)(0.5)
    assert [str(r[1]) for r in reaped] == [reply_id]
    reply = await Message.objects.aget(pk=reply_id)
    assert reply.status == Message.Status.INTERRUPTED and reply.error_code == "worker_lost"
    return reply


def taken_back(reply_id: str, longer_than: int) -> Message | None:
    """The reply, once its task's checkpoint has taken it back from the reaper with more text
    than ``longer_than`` characters."""
    reply = Message.objects.get(pk=reply_id)
    if reply.status == Message.Status.STREAMING and len(reply.content) > longer_than:
        return reply
    return None


@pytest.fixture
def worker_proxy() -> Iterator[PgProxy]:
    """A proxy to the test database, for a daphne worker to be cut off through."""
    db = connection.settings_dict
    with pg_proxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)) as proxy:
        yield proxy


@contextmanager
def holder_and_other(proxy: PgProxy, tokens_per_s: float) -> Iterator[tuple[str, str]]:
    """Two daphne workers on Redis and a simulator at ``tokens_per_s``: the holder, which
    reaches PostgreSQL through ``proxy``, and the other, directly (its reaper gives up on the
    holder's replies once the proxy cuts it off). Their base URLs."""
    through_proxy = servers.test_database_url(through_port=proxy.port)
    with (
        running_simulator(api_key=SIM_KEY, tokens_per_s=tokens_per_s, seed=1) as upstream,
        daphne_worker(
            upstream, SIM_KEY, DATABASE_URL=through_proxy, REDIS_URL=redis_url(), **TIMERS
        ) as holder,
        daphne_worker(upstream, SIM_KEY, REDIS_URL=redis_url(), **TIMERS) as other,
    ):
        yield holder, other


def database_session() -> psycopg.Connection[Any]:
    """A session of its own on the test database (beside Django's), e.g. to hold a row lock."""
    params = connection.get_connection_params()
    return psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"})


def until_waiting_on_a_lock(
    pid: Callable[[], int | None], ended: Callable[[], bool], timeout: float = 20
) -> None:
    """Return once the session ``pid()`` (None until it is known) waits on a lock, or once
    ``ended()``: what a test holding a row lock waits for before it lets go."""
    deadline = time.monotonic() + timeout
    with database_session() as watcher:
        while not ended():
            known = pid()
            if known is not None:
                row = watcher.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [known]
                ).fetchone()
                if row is not None and row[0] == "Lock":
                    return
            assert time.monotonic() < deadline, "it neither ended nor waited on a lock"
            time.sleep(0.05)
