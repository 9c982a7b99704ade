"""A ``ping`` is answered with a ``pong``, on any socket (a share link's too): a page that only
reads sends it to learn whether its connection still carries frames both ways."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import sharing
from conversations.models import Conversation, User
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def test_a_ping_is_answered_with_a_pong(
    alice: User, alice_conversation: Conversation, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    for _ in range(2):
        await socket.send({"type": "ping"})
        assert await socket.receive() == {"type": "pong"}
    # It takes no fields, as any frame takes only its own.
    await socket.send({"type": "ping", "client_id": "p1"})
    error = await socket.receive()
    await socket.close()
    assert (error["type"], error["code"], error["param"]) == (
        "error",
        "invalid_parameter",
        "client_id",
    )


async def test_a_share_links_socket_is_answered_too(
    alice: User, charlie: User, alice_conversation: Conversation, generation_service: Any
) -> None:
    _, token = await sync_to_async(sharing.create_share_link)(alice, alice_conversation.id)
    socket = await open_socket(charlie, alice_conversation, link=token)
    await socket.send({"type": "ping"})
    assert await socket.receive() == {"type": "pong"}
    await socket.close()
