"""A socket syncing a reply whose task does not answer (its worker died) falls back on the
stored reply; if the database cannot be read then, the read is tried again (bounded, with
backoff), and once every try has failed the socket is told: an ``error`` frame
(``database_unavailable``) naming the reply, with ``request_type`` ``reply.sync`` and
``retry_after``. Nothing of the reply is held for it any more: asked again once the database is
back (as the page does after ``retry_after``), it is sent the reply, and then the reply's end.

Before, the failed read left the reply "syncing" for that socket: its every later frame, its
end included, was held back until the page reconnected, and the page was told nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.utils import timezone

from conversations import actions
from conversations.models import Conversation, Message, User
from simulator.testing import running_simulator
from tests import servers
from tests.pgproxy import PgProxy, pg_proxy
from tests.servers import WorkerSocket, daphne_worker, session_cookie
from tests.support import SIM_KEY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

DEAD_WORKER = "generation.dead-worker!gone"
TIMERS = {"GENERATION_HEARTBEAT_SECONDS": "1", "GENERATION_STALE_SECONDS": "3"}


@pytest.fixture
def proxy() -> Iterator[PgProxy]:
    db = connection.settings_dict
    with pg_proxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)) as proxy:
        yield proxy


async def _heartbeat(reply_id: object) -> None:
    """The reply's holder heartbeats it until it dies (its task never answers a snapshot)."""
    while True:
        await Message.objects.filter(pk=reply_id).aupdate(heartbeat_at=timezone.now())
        await asyncio.sleep(0.5)


async def test_a_sync_whose_read_fails_tells_the_socket_and_holds_nothing(
    alice: User, alice_conversation: Conversation, proxy: PgProxy
) -> None:
    turn = await sync_to_async(actions.send_message)(
        alice, alice_conversation.id, client_id="c1", content="Hello", channel=DEAD_WORKER
    )
    reply_id = str(turn.reply.pk)
    await Message.objects.filter(pk=reply_id).aupdate(
        status=Message.Status.STREAMING, content="What the dead worker checkpointed", seq=7
    )
    holder = asyncio.ensure_future(_heartbeat(reply_id))
    cookie = await sync_to_async(session_cookie)(alice)
    db = connection.settings_dict
    through_proxy = servers.test_database_url().replace(
        f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/", f"@127.0.0.1:{proxy.port}/"
    )
    try:
        with (
            running_simulator(api_key=SIM_KEY) as upstream,
            daphne_worker(upstream, SIM_KEY, DATABASE_URL=through_proxy, **TIMERS) as worker,
        ):
            socket = await WorkerSocket.open(worker, alice_conversation.id, cookie)
            # The page syncs the reply; its task does not answer (its worker is gone), and by
            # the time the socket turns to the stored reply the database is out of its reach.
            await socket.send({"type": "reply.sync", "reply_id": reply_id, "after_seq": 0})
            await asyncio.sleep(0.5)
            await asyncio.to_thread(proxy.cut)
            try:
                told = await socket.until(("error", "reply.snapshot"), timeout=40)
            finally:
                await asyncio.to_thread(proxy.restore)
            assert told["type"] == "error", told
            assert told["code"] == "database_unavailable"
            assert told["request_type"] == "reply.sync" and told["reply_id"] == reply_id
            assert told["retry_after"] > 0

            # As the page does: asked again after retry_after, from the sequence it holds.
            await asyncio.sleep(told["retry_after"])
            while True:
                await socket.send({"type": "reply.sync", "reply_id": reply_id, "after_seq": 0})
                answer = await socket.until(("error", "reply.snapshot"), timeout=40)
                if answer["type"] == "reply.snapshot":
                    break
                assert answer.get("reply_id") == reply_id, answer  # the worker's pool reconnects
                await asyncio.sleep(answer["retry_after"])
            assert answer["content"] == "What the dead worker checkpointed"
            assert answer["seq"] == 7

            # Nothing of the reply is held: its end (the reaper's, once its holder is silent)
            # reaches the socket.
            holder.cancel()
            end = await socket.until(("reply.failed", "reply.completed"), timeout=40)
            assert end["reply_id"] == reply_id and end["status"] == "interrupted"
            await socket.close()
    finally:
        holder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await holder
