"""When PostgreSQL ends a worker's sessions (a restart, ``pg_terminate_backend``), the reply
being written is kept whole, and the worker serves the next message, API call and page at
once: its pools do not hand out the connections the server closed (chatsite/postgres).

Before, each pooled connection failed the unit of work that drew it, once the database was
back: the next message sent was answered ``internal_error``, the next API call 503."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, Message, UsageRecord, User
from simulator.testing import running_simulator
from tests import servers
from tests.servers import WorkerSocket, daphne_worker, session_cookie
from tests.support import SIM_KEY
from tests.test_api_support import bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

ANSWER = " ".join(f"word{i}" for i in range(80))  # 4 s at 20 tokens a second


def end_sessions(database_url: str, application_name: str) -> int:
    """Terminate the worker's sessions: Django's (named by its URL) and its API pool's."""
    with psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND application_name IN (%s, 'chat-api')",
            [database_url.rsplit("/", 1)[1], application_name],
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_a_worker_whose_sessions_are_ended_keeps_the_reply_and_serves_at_once(
    alice: User, alice_conversation: Conversation
) -> None:
    name = f"worker-{uuid.uuid4().hex[:8]}"
    database_url = servers.test_database_url()
    cookie = await sync_to_async(session_cookie)(alice)
    key = await sync_to_async(make_key)(alice)
    with (
        running_simulator(api_key=SIM_KEY, tokens_per_s=20, seed=1) as upstream,
        daphne_worker(
            upstream, SIM_KEY, DATABASE_URL=f"{database_url}?application_name={name}"
        ) as base,
    ):
        socket = await WorkerSocket.open(base, alice_conversation.id, cookie)
        await socket.send(
            {"type": "message.send", "client_id": "a", "content": f"[[sim: say={ANSWER}]]"}
        )
        await socket.until("reply.delta")
        await asyncio.sleep(1.5)  # a checkpoint or two: the API pool holds connections
        assert await asyncio.to_thread(end_sessions, database_url, name) > 0

        # The reply goes on, and is saved whole.
        end = await socket.until(("reply.completed", "reply.failed"))
        assert end["type"] == "reply.completed", end
        reply = await Message.objects.aget(pk=end["reply_id"])
        assert reply.status == Message.Status.COMPLETE and reply.content == ANSWER
        record = await UsageRecord.objects.aget(message_id=reply.pk)
        assert record.state == UsageRecord.State.SETTLED

        # The sessions ended again, with nothing running: what a restart leaves in the pools.
        response = await asyncio.to_thread(chat, base, bearer(key))
        assert response.status_code == 200, response.text
        await asyncio.sleep(0.5)  # the worker's end of the call: its pools hold connections
        assert await asyncio.to_thread(end_sessions, database_url, name) > 0

        response = await asyncio.to_thread(chat, base, bearer(key))
        assert response.status_code == 200, response.text
        await socket.send(
            {"type": "message.send", "client_id": "b", "content": "[[sim: say=again]]"}
        )
        frame: dict[str, Any] = await socket.until(("reply.completed", "reply.failed", "error"))
        assert frame["type"] == "reply.completed", frame
        page = await asyncio.to_thread(
            httpx.get, f"{base}/c/{alice_conversation.id}/", cookies={"sessionid": cookie}
        )
        assert page.status_code == 200
        await socket.close()
