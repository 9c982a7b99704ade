"""When the admin switches public links off, the anonymous viewers of share links leave at once
and can read nothing more; viewers signed in keep watching through their link."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from chatsite.asgi import application
from conversations import sharing
from conversations.models import Conversation, SharingSettings, User
from tests.support import TRUSTED_ORIGIN, client_for, open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def anonymous_viewer(conversation: Conversation, token: str) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(
        application,
        f"/ws/conversations/{conversation.id}/?link={token}",
        headers=[(b"origin", TRUSTED_ORIGIN.encode())],
    )
    connected, _ = await socket.connect(timeout=10)
    assert connected
    assert json.loads(await socket.receive_from(timeout=10))["type"] == "ready"
    return socket


async def frames_until_closed(socket: WebsocketCommunicator) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    while True:
        message = await socket.receive_output(timeout=10)
        if message["type"] == "websocket.close":
            return [*frames, {"type": "closed", "code": message.get("code")}]
        frames.append(json.loads(message["text"]))


async def test_switching_public_links_off_in_the_admin_closes_anonymous_link_sockets(
    alice: User,
    charlie: User,
    staff: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
) -> None:
    await SharingSettings.objects.aupdate_or_create(pk=1, defaults={"allow_public_links": True})
    _, token = await sync_to_async(sharing.create_share_link)(alice, alice_conversation.id)
    anonymous = await anonymous_viewer(alice_conversation, token)
    signed_in = await open_socket(charlie, alice_conversation, link=token)

    admin = await sync_to_async(client_for)(staff)
    response = await sync_to_async(admin.post)(
        "/admin/conversations/sharingsettings/1/change/",
        {},  # the box unchecked
    )
    assert response.status_code == 302, response.content.decode()[:2000]

    # Told that signing in would let them follow it again (what the link's page now says too:
    # it sends them to sign in), unlike a link that ended.
    frames = await frames_until_closed(anonymous)
    assert frames == [
        {
            "type": "error",
            "code": "access_revoked",
            "message": "Share links now need you to sign in.",
        },
        {"type": "closed", "code": 4401},
    ]
    owner = await open_socket(alice, alice_conversation)
    await owner.send({"type": "message.send", "client_id": "a1", "content": "[[sim: say=Hi.]]"})
    assert (await signed_in.until_reply_ends())["type"] == "reply.completed"
    await owner.close()
    await signed_in.close()


async def test_an_anonymous_socket_reads_nothing_once_public_links_are_off(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    """Even without the admin's announcement (a setting changed in the database directly), the
    anonymous socket's next frame finds public links off."""
    await SharingSettings.objects.aupdate_or_create(pk=1, defaults={"allow_public_links": True})
    _, token = await sync_to_async(sharing.create_share_link)(alice, alice_conversation.id)
    anonymous = await anonymous_viewer(alice_conversation, token)
    owner = await open_socket(alice, alice_conversation)
    await owner.send({"type": "message.send", "client_id": "a1", "content": "[[sim: say=Hi.]]"})
    end = await owner.until_reply_ends()
    await SharingSettings.objects.filter(pk=1).aupdate(allow_public_links=False)

    await anonymous.send_to(
        text_data=json.dumps({"type": "reply.sync", "reply_id": end["reply_id"], "after_seq": 0})
    )

    frames = await frames_until_closed(anonymous)
    assert not [f for f in frames if f["type"] == "reply.snapshot"], frames
    assert frames[-2]["code"] == "access_revoked" and frames[-1] == {"type": "closed", "code": 4401}
    await owner.close()


async def test_a_link_revoked_as_public_links_go_off_is_told_it_ended_not_to_sign_in(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    """Signing in would not bring a revoked link back: its anonymous viewer hears 4403."""
    await SharingSettings.objects.aupdate_or_create(pk=1, defaults={"allow_public_links": True})
    link, token = await sync_to_async(sharing.create_share_link)(alice, alice_conversation.id)
    anonymous = await anonymous_viewer(alice_conversation, token)
    await SharingSettings.objects.filter(pk=1).aupdate(allow_public_links=False)
    await sync_to_async(sharing.revoke_share_link)(alice, link.pk)

    frames = await frames_until_closed(anonymous)
    assert frames == [
        {
            "type": "error",
            "code": "access_revoked",
            "message": "This conversation is no longer shared with you.",
        },
        {"type": "closed", "code": 4403},
    ]
