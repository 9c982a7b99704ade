"""An account deleted in the admin leaves nothing open: its sockets on teammates' conversations
close (4403), and teammates' sockets on its conversations, deleted with it, close (4404). The
delete announced nothing, so those sockets stayed open and kept receiving every frame."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import sharing
from conversations.models import Conversation, Team, User
from tests.support import client_for, closed_code, open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.mark.parametrize("how", ["delete page", "changelist action"])
async def test_deleting_an_account_closes_the_views_it_ends(
    alice: User,
    bob: User,
    staff: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
    how: str,
) -> None:
    team = await Team.objects.acreate(name="ops")
    await team.members.aset([alice, bob])
    await sync_to_async(sharing.set_visibility)(alice, alice_conversation.id, "team", team.id)
    bobs_conversation = await Conversation.objects.acreate(
        owner=bob, model_id=alice_conversation.model_id, title="Bob's"
    )
    await sync_to_async(sharing.set_visibility)(bob, bobs_conversation.id, "team", team.id)
    bob_on_alices = await open_socket(bob, alice_conversation)
    alice_on_bobs = await open_socket(alice, bobs_conversation)
    alice_on_hers = await open_socket(alice, alice_conversation)

    admin = await sync_to_async(client_for)(staff)
    if how == "delete page":
        response = await sync_to_async(admin.post)(
            f"/admin/conversations/user/{bob.pk}/delete/", {"post": "yes"}
        )
    else:
        response = await sync_to_async(admin.post)(
            "/admin/conversations/user/",
            {"action": "delete_selected", "_selected_action": [bob.pk], "post": "yes"},
        )
    assert response.status_code == 302
    assert not await User.objects.filter(pk=bob.pk).aexists()

    assert await closed_code(bob_on_alices) == 4403
    assert await closed_code(alice_on_bobs) == 4404
    # Alice's own view of her conversation stays and works.
    await alice_on_hers.send(
        {"type": "message.send", "client_id": "a1", "content": "[[sim: say=Still here.]]"}
    )
    assert (await alice_on_hers.until_reply_ends())["type"] == "reply.completed"
    await alice_on_hers.close()
