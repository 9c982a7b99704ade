"""A conversation an account renames is announced to that account's own open sockets
(``conversation.listed``: their pages list it), after commit: not to another account's, and not
to a socket that sees a conversation only through a share link. One it makes is announced once
its first message is admitted, not while it is empty."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import sharing
from conversations.models import Conversation, ModelConfig, User
from tests.support import Socket, client_for, open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def nothing_listed(socket: Socket) -> None:
    while not await socket.communicator.receive_nothing(timeout=1):
        assert (await socket.receive())["type"] != "conversation.listed", socket.frames


async def test_a_new_and_a_renamed_conversation_reach_the_owners_sockets_only(
    alice: User,
    bob: User,
    alice_conversation: Conversation,
    chat_model: ModelConfig,
    generation_service: Any,
) -> None:
    bobs = await Conversation.objects.acreate(owner=bob, model=chat_model, title="Bob's")
    _, token = await sync_to_async(sharing.create_share_link)(bob, bobs.id)
    owner = await open_socket(alice, alice_conversation)
    teammate = await open_socket(bob, bobs)
    # Alice's own too, but on Bob's conversation through his link: it hears only that.
    through_link = await open_socket(alice, bobs, link=token)

    client = await sync_to_async(client_for)(alice)
    created = await sync_to_async(client.post)(
        "/c/new/", {"model": chat_model.name}, content_type="application/json"
    )
    assert created.status_code == 201
    new_id = created.json()["id"]
    # Empty, it is not listed yet: its first message admitted lists it (tested in the browser).
    await nothing_listed(owner)

    renamed = await sync_to_async(client.post)(
        f"/c/{new_id}/rename/", {"title": "Release checklist"}, content_type="application/json"
    )
    assert renamed.status_code == 200
    listed = await owner.until_type("conversation.listed")
    assert listed["conversation"] == {"id": new_id, "title": "Release checklist"}

    await nothing_listed(teammate)
    await nothing_listed(through_link)
    for socket in (owner, teammate, through_link):
        await socket.close()
