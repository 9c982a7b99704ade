"""A conversation deleted through one worker reaches its owner's tabs on another (through
Redis), over real sockets: the welcome page's socket and a conversation page's each get
``conversation.deleted``; another account's welcome page, on either worker, gets nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, User
from simulator.testing import running_simulator
from tests.servers import WorkerSocket, daphne_worker, redis_url, session_cookie
from tests.support import SIM_KEY
from tests.test_deleting_a_conversation_stops_its_replies import delete_in_the_admin_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def workers(chat_model: Any) -> Iterator[tuple[str, str]]:
    with running_simulator(api_key=SIM_KEY) as upstream:
        env = {"REDIS_URL": redis_url()}
        with (
            daphne_worker(upstream, SIM_KEY, **env) as a,
            daphne_worker(upstream, SIM_KEY, **env) as b,
        ):
            yield a, b


async def nothing_told(socket: WorkerSocket) -> None:
    with pytest.raises(asyncio.TimeoutError):
        while True:
            frame = await socket.receive(timeout=1.5)
            assert frame["type"] not in ("conversation.deleted", "conversation.listed"), frame


async def test_a_delete_on_one_worker_reaches_the_owners_sockets_on_the_other(
    alice: User,
    bob: User,
    staff: User,
    alice_conversation: Conversation,
    chat_model: Any,
    workers: tuple[str, str],
) -> None:
    worker_a, worker_b = workers
    doomed = await Conversation.objects.acreate(owner=alice, model=chat_model, title="Old plan")
    alices = await sync_to_async(session_cookie)(alice)
    bobs = await sync_to_async(session_cookie)(bob)
    welcome = await WorkerSocket.open_account(worker_b, alices)
    other_tab = await WorkerSocket.open(worker_b, alice_conversation.id, alices)
    bobs_welcome = [await WorkerSocket.open_account(w, bobs) for w in workers]

    staff_cookie = await sync_to_async(session_cookie)(staff)
    await sync_to_async(delete_in_the_admin_of)(worker_a, staff_cookie, doomed)

    told = {"type": "conversation.deleted", "ids": [str(doomed.id)]}
    assert await welcome.until("conversation.deleted") == told
    assert await other_tab.until("conversation.deleted") == told
    for socket in bobs_welcome:
        await nothing_told(socket)
    for socket in (welcome, other_tab, *bobs_welcome):
        await socket.close()
