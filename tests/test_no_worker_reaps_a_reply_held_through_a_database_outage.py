"""A reply whose worker holds it through a database outage is not reaped by another worker when
the database is back: nobody could heartbeat a row while it was away, so a reaper waits until
the database has been reachable for a heartbeat interval before it judges rows silent. The
holder, meanwhile, has heartbeated its rows and saved the reply whole.

Before, at the first pass after the outage, another worker's reaper marked the reply
``interrupted`` (``worker_lost``) with the text of its last checkpoint, and the holder's final
write, a moment later, found the row no longer its own: the rest of the reply was lost."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from asgiref.sync import sync_to_async
from psycopg import sql

from conversations.models import Conversation, Message, User
from simulator.testing import running_simulator
from tests import servers
from tests.servers import WorkerSocket, daphne_worker, session_cookie
from tests.support import SIM_KEY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

ANSWER = " ".join(f"word{i}" for i in range(60))  # 3 s at 20 tokens a second
WORKER = f"worker-{uuid.uuid4().hex[:8]}"  # the application name of both workers' sessions


class Outage:
    """The test database refusing connections, and the workers' sessions ended: what the
    workers see while PostgreSQL restarts (this process's own sessions stay)."""

    def __init__(self) -> None:
        url = servers.test_database_url()
        self.database = url.rsplit("/", 1)[1]
        self.admin = psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True)

    def begin(self) -> None:
        self._allow(False)
        self.admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND application_name IN (%s, 'chat-api')",
            [self.database, WORKER],
        )

    def end(self) -> None:
        self._allow(True)

    def _allow(self, allowed: bool) -> None:
        self.admin.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                sql.Identifier(self.database), sql.SQL("true" if allowed else "false")
            )
        )


@pytest.fixture
def outage() -> Iterator[Outage]:
    outage = Outage()
    try:
        yield outage
    finally:
        outage.end()
        outage.admin.close()


async def test_a_reply_held_through_an_outage_is_saved_whole_not_reaped_elsewhere(
    alice: User, alice_conversation: Conversation, outage: Outage
) -> None:
    cookie = await sync_to_async(session_cookie)(alice)
    env = {
        "DATABASE_URL": f"{servers.test_database_url()}?application_name={WORKER}",
        "GENERATION_HEARTBEAT_SECONDS": "1",
        "GENERATION_STALE_SECONDS": "4",
    }
    with (
        running_simulator(api_key=SIM_KEY, tokens_per_s=20, seed=1) as upstream,
        daphne_worker(upstream, SIM_KEY, **env) as holder,
        daphne_worker(upstream, SIM_KEY, **env),  # the other worker: its reaper runs
    ):
        socket = await WorkerSocket.open(holder, alice_conversation.id, cookie)
        await socket.send(
            {"type": "message.send", "client_id": "a", "content": f"[[sim: say={ANSWER}]]"}
        )
        await socket.until("reply.delta")
        await asyncio.to_thread(outage.begin)
        await asyncio.sleep(10)  # the answer ends meanwhile; its heartbeat goes stale
        await asyncio.to_thread(outage.end)

        end = await socket.until(("reply.completed", "reply.failed"), timeout=30)
        assert end["type"] == "reply.completed", end
        reply = await Message.objects.aget(pk=end["reply_id"])
        assert reply.status == Message.Status.COMPLETE
        assert reply.content == ANSWER
        await socket.close()
