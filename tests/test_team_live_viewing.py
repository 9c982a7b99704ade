"""Bob watches Alice's reply being written; he cannot act on it; unsharing or revoking closes
his view at once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from chatsite.asgi import application
from conversations import sharing
from conversations.models import AuditEntry, Conversation, SharingSettings, Team, User
from tests.support import TRUSTED_ORIGIN, client_for, closed_code, open_socket, reply_text

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]
ANSWER = " ".join(f"step{i}" for i in range(80))


async def share_with_team(alice: User, bob: User, conversation: Conversation) -> None:
    team = await Team.objects.acreate(name="ops")
    await team.members.aset([alice, bob])
    await sync_to_async(sharing.set_visibility)(alice, conversation.id, "team", team.id)


async def test_bob_watches_a_live_reply_but_cannot_act_on_it(
    alice: User,
    bob: User,
    alice_conversation: Conversation,
    slow_simulator: str,
    generation_service: Any,
) -> None:
    await share_with_team(alice, bob, alice_conversation)
    author = await open_socket(alice, alice_conversation)
    viewer = await open_socket(bob, alice_conversation)
    await author.send(
        {"type": "message.send", "client_id": "a1", "content": f"[[sim: say={ANSWER}]]"}
    )
    first = await viewer.until_type("reply.delta")
    for frame in [
        {"type": "reply.cancel", "reply_id": first["reply_id"]},
        {"type": "message.send", "client_id": "b1", "content": "me too"},
        {"type": "reply.regenerate", "reply_id": first["reply_id"], "client_id": "b2"},
    ]:
        await viewer.send(frame)
        error = await viewer.until_type("error")
        assert error["code"] == "permission_denied", error
    end = await viewer.until_reply_ends()
    assert end["type"] == "reply.completed"
    assert reply_text(viewer.frames, first["reply_id"]) == ANSWER
    await author.close()
    await viewer.close()


async def test_unsharing_closes_bobs_live_view(
    alice: User,
    bob: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
) -> None:
    await share_with_team(alice, bob, alice_conversation)
    viewer = await open_socket(bob, alice_conversation)
    owner_socket = await open_socket(alice, alice_conversation)
    await sync_to_async(sharing.set_visibility)(alice, alice_conversation.id, "private")
    closed = await viewer.communicator.receive_output(timeout=10)
    while closed["type"] != "websocket.close":
        closed = await viewer.communicator.receive_output(timeout=10)
    assert closed["code"] == 4403
    # The owner stays connected and can still send.
    await owner_socket.send(
        {"type": "message.send", "client_id": "a1", "content": "[[sim: say=still mine]]"}
    )
    assert (await owner_socket.until_reply_ends())["type"] == "reply.completed"
    await owner_socket.close()


async def test_a_share_link_socket_is_closed_when_the_link_is_revoked(
    alice: User,
    charlie: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
) -> None:
    link, token = await sync_to_async(sharing.create_share_link)(alice, alice_conversation.id)
    viewer = await open_socket(charlie, alice_conversation, link=token)
    await viewer.send({"type": "message.send", "client_id": "c1", "content": "hello"})
    assert (await viewer.until_type("error"))["code"] == "permission_denied"
    await sync_to_async(sharing.revoke_share_link)(alice, link.pk)
    closed = await viewer.communicator.receive_output(timeout=10)
    while closed["type"] != "websocket.close":
        closed = await viewer.communicator.receive_output(timeout=10)
    assert closed["code"] == 4403


async def anonymous_socket(conversation: Conversation, token: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application,
        f"/ws/conversations/{conversation.id}/?link={token}",
        headers=[(b"origin", TRUSTED_ORIGIN.encode())],
    )


async def test_anonymous_link_sockets_need_the_admins_public_links_setting(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    _, token = await sync_to_async(sharing.create_share_link)(alice, alice_conversation.id)
    refused = await anonymous_socket(alice_conversation, token)
    connected, _ = await refused.connect(timeout=10)
    assert connected  # then closed at once, with a code the browser can read
    assert (await refused.receive_output(timeout=10)) == {"type": "websocket.close", "code": 4401}
    await SharingSettings.objects.aupdate_or_create(pk=1, defaults={"allow_public_links": True})
    viewer = await anonymous_socket(alice_conversation, token)
    connected, _ = await viewer.connect(timeout=10)
    assert connected
    assert json.loads(await viewer.receive_from(timeout=10))["type"] == "ready"
    await viewer.send_to(
        text_data=json.dumps({"type": "message.send", "client_id": "x1", "content": "hi"})
    )
    error = json.loads(await viewer.receive_from(timeout=10))
    assert error["type"] == "error" and error["code"] == "permission_denied"
    await viewer.disconnect()


async def test_admin_edits_and_a_delete_that_remove_access_close_open_views(
    alice: User,
    bob: User,
    charlie: User,
    staff: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
) -> None:
    """Not only the owner's sharing controls: a team's members edited in the admin, an
    account deactivated there, and the owner's delete close the views they end."""
    await share_with_team(alice, bob, alice_conversation)
    team = await Team.objects.aget(name="ops")
    await team.members.aadd(charlie)
    admin = await sync_to_async(client_for)(staff)

    bobs_view = await open_socket(bob, alice_conversation)
    response = await sync_to_async(admin.post)(
        f"/admin/conversations/team/{team.pk}/change/",
        {"name": "ops", "members": [alice.pk, charlie.pk]},
    )
    assert response.status_code == 302
    assert await closed_code(bobs_view) == 4403

    charlies_view = await open_socket(charlie, alice_conversation)
    response = await sync_to_async(admin.post)(
        f"/admin/conversations/user/{charlie.pk}/change/",
        {
            "username": "charlie",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "limits-TOTAL_FORMS": "0",
            "limits-INITIAL_FORMS": "0",
            "limits-MIN_NUM_FORMS": "0",
            "limits-MAX_NUM_FORMS": "1",
        },  # is_active left out: unchecked
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert await closed_code(charlies_view) == 4403
    entry = await AuditEntry.objects.aget(target_type="user", target_id=str(charlie.pk))
    assert (entry.before["is_active"], entry.after["is_active"]) == (True, False)
    assert "password" not in entry.after

    owners_other_tab = await open_socket(alice, alice_conversation)
    deleted = await sync_to_async(_delete_as)(alice, alice_conversation)
    assert deleted.status_code < 400
    assert await closed_code(owners_other_tab) == 4404  # told it was deleted, not unshared


def _delete_as(user: User, conversation: Conversation) -> Any:
    return client_for(user).post(f"/c/{conversation.id}/delete/")
