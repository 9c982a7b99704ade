"""With no team at all, a shared conversation is every active user's to read. The admin's first
team takes it from them all (it is shared with no team, so with no one but its collaborators):
Bob's and Charlie's open lists unlist it and Bob's open view of it closes (4403) at once. The
last team deleted gives it back to everyone, with the conversations that team had: they list
them at once. Neither change was told: the first team's save only told the (none) conversations
shared with it, so Bob went on reading, and listing, what he no longer saw."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import sharing
from conversations.models import Conversation, ModelConfig, Team, User
from tests.support import admin_form, client_for, open_account_socket, open_socket
from tests.test_a_teammates_lists_follow_what_is_shared_with_them import (
    listed,
    nothing_shared_told,
    unlisted,
)
from tests.test_deleting_an_account_closes_its_views import closed_code

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]


@pytest.mark.parametrize("how", ["delete page", "changelist action"])
async def test_the_first_team_unlists_what_everyone_saw_and_the_last_lists_it_again(
    alice: User,
    bob: User,
    charlie: User,
    staff: User,
    alice_conversation: Conversation,
    chat_model: ModelConfig,
    simulator: str,
    generation_service: Any,
    how: str,
) -> None:
    await sync_to_async(sharing.set_visibility)(alice, alice_conversation.id, "team")
    private = await Conversation.objects.acreate(owner=alice, model=chat_model, title="Mine")
    bobs_welcome = await open_account_socket(bob)
    charlies_welcome = await open_account_socket(charlie)
    bob_reading = await open_socket(bob, alice_conversation)  # shared with everyone: he may
    alices_welcome = await open_account_socket(alice)
    admin = await sync_to_async(client_for)(staff)

    # The first team, Alice and Bob's: the conversation is now shared with no team, so with
    # no one else. Both unlist it, and Bob's view of it closes.
    page = "/admin/conversations/team/add/"
    form = await sync_to_async(admin_form)(admin, page, name="ops", members=[alice.pk, bob.pk])
    response = await sync_to_async(admin.post)(page, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    team = await Team.objects.aget(name="ops")
    for socket in (bobs_welcome, charlies_welcome):
        assert await socket.until_type("shared.unlisted") == unlisted(alice_conversation)
    assert await closed_code(bob_reading) == 4403
    await nothing_shared_told(alices_welcome)  # hers all along

    # Alice shares another with the team; then the admin deletes the last team: both are
    # everyone's again (that team's too, its team set to null).
    team_notes = await Conversation.objects.acreate(owner=alice, model=chat_model, title="Ops")
    await sync_to_async(sharing.set_visibility)(alice, team_notes.id, "team", team.id)
    assert await bobs_welcome.until_type("shared.listed") == listed(team_notes, "Ops")
    await nothing_shared_told(charlies_welcome)
    if how == "delete page":
        response = await sync_to_async(admin.post)(
            f"/admin/conversations/team/{team.pk}/delete/", {"post": "yes"}
        )
    else:
        response = await sync_to_async(admin.post)(
            "/admin/conversations/team/",
            {"action": "delete_selected", "_selected_action": [team.pk], "post": "yes"},
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not await Team.objects.aexists()
    assert await bobs_welcome.until_type("shared.listed") == listed(
        alice_conversation, "Deploy notes"
    )
    await nothing_shared_told(bobs_welcome)  # he saw the team's all along
    told = {
        (await charlies_welcome.until_type("shared.listed"))["conversation"]["id"] for _ in range(2)
    }
    assert told == {str(alice_conversation.id), str(team_notes.id)}
    await nothing_shared_told(charlies_welcome)  # nothing of the private one
    assert str(private.id) not in str(charlies_welcome.frames)
    # And Bob may read it again.
    bob_back = await open_socket(bob, alice_conversation)
    for socket in (bobs_welcome, charlies_welcome, alices_welcome, bob_back):
        await socket.close()


async def test_a_second_team_or_a_team_that_is_not_the_last_leaves_the_others_alone(
    alice: User,
    bob: User,
    charlie: User,
    staff: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
) -> None:
    """Only the first and the last team change who sees a conversation shared with no team."""
    ops = await Team.objects.acreate(name="ops")
    await ops.members.aset([alice, bob])
    await Conversation.objects.filter(pk=alice_conversation.pk).aupdate(visibility="team")
    bobs_welcome = await open_account_socket(bob)
    admin = await sync_to_async(client_for)(staff)

    page = "/admin/conversations/team/add/"
    form = await sync_to_async(admin_form)(admin, page, name="dev", members=[bob.pk, charlie.pk])
    response = await sync_to_async(admin.post)(page, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    dev = await Team.objects.aget(name="dev")
    response = await sync_to_async(admin.post)(
        f"/admin/conversations/team/{dev.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    await nothing_shared_told(bobs_welcome)
    await bobs_welcome.close()
