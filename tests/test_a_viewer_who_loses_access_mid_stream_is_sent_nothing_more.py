"""Bob watches Alice's reply being written; she makes the conversation private (or revokes the
link Charlie watches through). From the moment their sockets hear of it, they are sent no more
of the reply: nothing while their access is checked again, then the reason and the close (4403).
The check reads the database: meanwhile the reply's deltas, handed to the sockets directly,
went on reaching them (here the check is made to wait on a lock of the sessions table, so that
the window is wide enough to see)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from conversations import sharing
from conversations.models import Conversation, Team, User
from tests.support import Socket, open_socket
from tests.test_team_live_viewing import closed_code

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]
ANSWER = " ".join(f"step{i}" for i in range(400))


@contextmanager
def sessions_locked() -> Iterator[None]:
    """Another connection holds the sessions table: a socket's re-check of its session waits."""
    settings = connection.settings_dict
    with psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
    ) as other:
        other.execute("LOCK TABLE django_session IN ACCESS EXCLUSIVE MODE")
        yield
        other.rollback()


async def sent_nothing_while_rechecking(viewer: Socket, end_access: Callable[[], Any]) -> None:
    await viewer.until_type("reply.delta")
    with sessions_locked():
        await sync_to_async(end_access)()
        # What was on its way before the socket heard of it may still come (for a moment)...
        deadline = asyncio.get_running_loop().time() + 0.5
        while asyncio.get_running_loop().time() < deadline:
            if not await viewer.communicator.receive_nothing(timeout=0.05):
                await viewer.receive()
        # ...then nothing, while the reply goes on being written.
        assert await viewer.communicator.receive_nothing(timeout=2), await viewer.receive()
    # Then only what the account's lists show (a teammate's: this conversation unlisted), the
    # reason, and the close.
    revoked = await viewer.receive()
    while revoked["type"] == "shared.unlisted":
        revoked = await viewer.receive()
    assert revoked["type"] == "error" and revoked["code"] == "access_revoked", revoked
    assert await closed_code(viewer) == 4403


async def test_a_teammate_is_sent_no_delta_once_the_conversation_is_made_private(
    alice: User,
    bob: User,
    alice_conversation: Conversation,
    slow_simulator: str,
    generation_service: Any,
) -> None:
    team = await Team.objects.acreate(name="ops")
    await team.members.aset([alice, bob])
    await sync_to_async(sharing.set_visibility)(alice, alice_conversation.id, "team", team.id)
    author = await open_socket(alice, alice_conversation)
    viewer = await open_socket(bob, alice_conversation)
    await author.send(
        {"type": "message.send", "client_id": "a1", "content": f"[[sim: say={ANSWER}]]"}
    )
    await sent_nothing_while_rechecking(
        viewer, lambda: sharing.set_visibility(alice, alice_conversation.id, "private")
    )
    # Alice's reply goes on.
    assert (await author.until_type("reply.delta"))["type"] == "reply.delta"
    await asyncio.gather(author.close(), viewer.close())


async def test_a_link_holder_is_sent_no_delta_once_the_link_is_revoked(
    alice: User,
    charlie: User,
    alice_conversation: Conversation,
    slow_simulator: str,
    generation_service: Any,
) -> None:
    link, token = await sync_to_async(sharing.create_share_link)(alice, alice_conversation.id)
    author = await open_socket(alice, alice_conversation)
    viewer = await open_socket(charlie, alice_conversation, link=token)
    await author.send(
        {"type": "message.send", "client_id": "a1", "content": f"[[sim: say={ANSWER}]]"}
    )
    await sent_nothing_while_rechecking(viewer, lambda: sharing.revoke_share_link(alice, link.pk))
    await asyncio.gather(author.close(), viewer.close())
