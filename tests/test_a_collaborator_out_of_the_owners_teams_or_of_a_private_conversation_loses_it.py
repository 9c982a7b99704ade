"""Alice shares a conversation with the team "eng" (Alice, Bob, Charlie) and names Bob a
collaborator. Taken out of the team in the admin, Bob loses it at once: its page, its export
and posting refuse him, and his open view of it closes (4403). Made private, it loses its
collaborators: Bob cannot open it. Before, a collaborator kept reading and posting whatever his
teams or the conversation's visibility became, and the owner's sharing page, which still named
him, could no longer be saved ("Not in a team of yours: bob"). A name no one has is refused as
a stranger's is: the form tells an owner nothing of the accounts outside their teams."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import actions, sharing
from conversations.errors import NotFound
from conversations.models import Conversation, Team, User
from tests.support import admin_form, client_for, closed_code, open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def share_with_eng(alice: User, bob: User, charlie: User, conversation: Conversation) -> Team:
    eng = Team.objects.create(name="eng")
    eng.members.set([alice, bob, charlie])
    sharing.set_visibility(alice, conversation.id, "team", eng.id)
    sharing.set_collaborators(alice, conversation.id, ["bob"])
    return eng


def refused_everywhere(bob: User, conversation: Conversation) -> None:
    client = client_for(bob)
    for url in (
        f"/c/{conversation.id}/",
        f"/c/{conversation.id}/export.md",
        f"/c/{conversation.id}/export.json",
    ):
        assert client.get(url).status_code == 404, url
    with pytest.raises(NotFound):
        actions.send_message(bob, conversation.id, client_id="b1", content="Still here?")


async def test_a_collaborator_taken_out_of_the_team_loses_the_conversation_at_once(
    alice: User,
    bob: User,
    charlie: User,
    staff: User,
    alice_conversation: Conversation,
    generation_service: Any,
) -> None:
    eng = await sync_to_async(share_with_eng)(alice, bob, charlie, alice_conversation)
    bobs_view = await open_socket(bob, alice_conversation)
    admin = await sync_to_async(client_for)(staff)

    page = f"/admin/conversations/team/{eng.pk}/change/"
    form = await sync_to_async(admin_form)(admin, page, members=[alice.pk, charlie.pk])
    response = await sync_to_async(admin.post)(page, form)
    assert response.status_code == 302, response.content.decode()[:2000]

    assert await closed_code(bobs_view) == 4403
    await sync_to_async(refused_everywhere)(bob, alice_conversation)

    # Alice's sharing page still names him, as not in a team of hers, and saves as it shows.
    alices = await sync_to_async(client_for)(alice)
    sharing_page = (
        await sync_to_async(alices.get)(f"/c/{alice_conversation.id}/sharing/")
    ).content.decode()
    assert "Not in a team of yours now" in sharing_page and 'value="bob"' in sharing_page
    response = await sync_to_async(alices.post)(
        f"/c/{alice_conversation.id}/sharing/collaborators/", {"collaborators": "bob, charlie"}
    )
    assert response.status_code == 302, response.content.decode()
    names = await sync_to_async(
        lambda: sorted(alice_conversation.collaborators.values_list("username", flat=True))
    )()
    assert names == ["bob", "charlie"]
    await sync_to_async(refused_everywhere)(bob, alice_conversation)
    # A newcomer must still be a teammate.
    stranger = await sync_to_async(User.objects.create_user)("dora")
    response = await sync_to_async(alices.post)(
        f"/c/{alice_conversation.id}/sharing/collaborators/", {"collaborators": "bob, dora"}
    )
    assert (
        response.status_code == 400 and "Not in a team of yours: dora." in response.content.decode()
    )
    assert stranger.pk
    # A name no one has is refused alike: the owner learns nothing of who exists outside
    # their teams (before: "No such user", so a stranger's name was told apart).
    response = await sync_to_async(alices.post)(
        f"/c/{alice_conversation.id}/sharing/collaborators/", {"collaborators": "bob, nosuchuser"}
    )
    assert response.status_code == 400
    assert "Not in a team of yours: nosuchuser." in response.content.decode()
    assert "No such user" not in response.content.decode()


async def test_a_conversation_made_private_loses_its_collaborators(
    alice: User,
    bob: User,
    charlie: User,
    alice_conversation: Conversation,
    generation_service: Any,
) -> None:
    await sync_to_async(share_with_eng)(alice, bob, charlie, alice_conversation)
    bobs_view = await open_socket(bob, alice_conversation)
    alices = await sync_to_async(client_for)(alice)

    response = await sync_to_async(alices.post)(
        f"/c/{alice_conversation.id}/sharing/visibility/", {"visibility": "private"}
    )
    assert response.status_code == 302

    assert await closed_code(bobs_view) == 4403
    await sync_to_async(refused_everywhere)(bob, alice_conversation)
    assert not await alice_conversation.collaborators.aexists()
