"""Bob's open tabs list what is shared with him as it is now: a conversation Alice shares with
their team, renames, makes private, deletes or brings back, or that the admin deletes or
takes from the team, is listed (``shared.listed``) or unlisted (``shared.unlisted``) on his
account's sockets at once. Charlie, outside the team, never hears of it, nor does anyone of a
private conversation. These changes used to reach the owner's own sockets only: teammates' lists
kept what had been made private or deleted, and never showed what had just been shared."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import sharing, ui_actions
from conversations.generation import generate_title
from conversations.models import Conversation, ModelConfig, Team, User
from tests.support import (
    Socket,
    admin_form,
    client_for,
    open_account_socket,
    open_socket,
    title_context,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

SHARED = ("shared.listed", "shared.unlisted")


async def nothing_shared_told(socket: Socket) -> None:
    while not await socket.communicator.receive_nothing(timeout=1):
        frame = await socket.receive()
        assert frame["type"] not in SHARED, socket.frames


def listed(conversation: Conversation, title: str) -> dict[str, Any]:
    return {
        "type": "shared.listed",
        "conversation": {"id": str(conversation.id), "title": title, "owner": "Alice"},
    }


def unlisted(*conversations: Conversation) -> dict[str, Any]:
    return {"type": "shared.unlisted", "ids": [str(c.id) for c in conversations]}


@pytest.fixture
async def team(alice: User, bob: User) -> Team:
    team = await Team.objects.acreate(name="ops")
    await team.members.aset([alice, bob])
    await Team.objects.acreate(name="elsewhere")  # Charlie's deployment has teams
    return team


async def test_sharing_renaming_unsharing_deleting_and_undoing_reach_the_teammates_tabs_only(
    alice: User,
    bob: User,
    charlie: User,
    team: Team,
    alice_conversation: Conversation,
    chat_model: ModelConfig,
    generation_service: Any,
) -> None:
    bobs_own = await Conversation.objects.acreate(owner=bob, model=chat_model, title="Bob's")
    bobs_welcome = await open_account_socket(bob)
    bobs_chat = await open_socket(bob, bobs_own)  # his conversation page's socket hears it too
    charlies_welcome = await open_account_socket(charlie)
    alice_client = await sync_to_async(client_for)(alice)
    share = sync_to_async(sharing.set_visibility)

    # Renamed while private: no one but Alice hears of it.
    await sync_to_async(ui_actions.rename_conversation)(alice_conversation, "Secret plan")
    await nothing_shared_told(bobs_welcome)

    await share(alice, alice_conversation.id, "team", team.id)
    for socket in (bobs_welcome, bobs_chat):
        assert await socket.until_type("shared.listed") == listed(alice_conversation, "Secret plan")

    response = await sync_to_async(alice_client.post)(
        f"/c/{alice_conversation.id}/rename/",
        {"title": "Open plan"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert await bobs_welcome.until_type("shared.listed") == listed(alice_conversation, "Open plan")

    await share(alice, alice_conversation.id, "private")
    for socket in (bobs_welcome, bobs_chat):
        assert await socket.until_type("shared.unlisted") == unlisted(alice_conversation)
    await sync_to_async(ui_actions.rename_conversation)(alice_conversation, "Private again")
    await nothing_shared_told(bobs_welcome)

    await share(alice, alice_conversation.id, "team", team.id)
    assert await bobs_welcome.until_type("shared.listed") == listed(
        alice_conversation, "Private again"
    )
    response = await sync_to_async(alice_client.post)(f"/c/{alice_conversation.id}/delete/")
    assert response.status_code == 200
    assert await bobs_welcome.until_type("shared.unlisted") == unlisted(alice_conversation)
    response = await sync_to_async(alice_client.post)(f"/c/{alice_conversation.id}/restore/")
    assert response.status_code == 200
    assert await bobs_welcome.until_type("shared.listed") == listed(
        alice_conversation, "Private again"
    )

    await nothing_shared_told(charlies_welcome)
    for socket in (bobs_welcome, bobs_chat, charlies_welcome):
        await socket.close()


async def test_collaborators_of_a_private_conversation_list_it_until_they_are_removed(
    alice: User, bob: User, alice_conversation: Conversation, generation_service: Any
) -> None:
    bobs_welcome = await open_account_socket(bob)
    await sync_to_async(sharing.set_collaborators)(alice, alice_conversation.id, ["bob"])
    assert await bobs_welcome.until_type("shared.listed") == listed(
        alice_conversation, "Deploy notes"
    )
    await sync_to_async(sharing.set_collaborators)(alice, alice_conversation.id, [])
    assert await bobs_welcome.until_type("shared.unlisted") == unlisted(alice_conversation)
    await bobs_welcome.close()


async def test_a_title_given_to_a_shared_conversation_reaches_the_teammates_lists(
    alice: User,
    bob: User,
    team: Team,
    chat_model: ModelConfig,
    simulator: str,
    generation_service: Any,
) -> None:
    untitled = await Conversation.objects.acreate(owner=alice, model=chat_model)
    await sync_to_async(sharing.set_visibility)(alice, untitled.id, "team", team.id)
    bobs_welcome = await open_account_socket(bob)
    context = await sync_to_async(title_context)(untitled, "How do tides work?")
    await generate_title(generation_service, context, "The moon pulls the sea.")
    frame = await bobs_welcome.until_type("shared.listed")
    stored = await Conversation.objects.aget(pk=untitled.pk)
    assert stored.title
    assert frame == listed(untitled, stored.title)
    await bobs_welcome.close()


async def test_the_admins_deletes_and_team_edits_unlist_it_for_those_who_lose_it(
    alice: User,
    bob: User,
    charlie: User,
    staff: User,
    team: Team,
    chat_model: ModelConfig,
    generation_service: Any,
) -> None:
    await team.members.aadd(charlie)
    kept = await Conversation.objects.acreate(owner=alice, model=chat_model, title="Kept")
    doomed = await Conversation.objects.acreate(owner=alice, model=chat_model, title="Doomed")
    for conversation in (kept, doomed):
        await sync_to_async(sharing.set_visibility)(alice, conversation.id, "team", team.id)
    bobs_welcome = await open_account_socket(bob)
    charlies_welcome = await open_account_socket(charlie)
    admin = await sync_to_async(client_for)(staff)

    response = await sync_to_async(admin.post)(
        f"/admin/conversations/conversation/{doomed.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    for socket in (bobs_welcome, charlies_welcome):
        assert await socket.until_type("shared.unlisted") == unlisted(doomed)

    # Charlie leaves the team: he unlists what it shares; Bob, who stays, is told nothing.
    page = f"/admin/conversations/team/{team.pk}/change/"
    form = await sync_to_async(admin_form)(admin, page, members=[alice.pk, bob.pk])
    response = await sync_to_async(admin.post)(page, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert await charlies_welcome.until_type("shared.unlisted") == unlisted(kept)
    await nothing_shared_told(bobs_welcome)
    # And he hears nothing more of it.
    await sync_to_async(ui_actions.rename_conversation)(kept, "Renamed")
    assert await bobs_welcome.until_type("shared.listed") == listed(kept, "Renamed")
    await nothing_shared_told(charlies_welcome)
    for socket in (bobs_welcome, charlies_welcome):
        await socket.close()


async def test_an_accounts_delete_unlists_what_it_shared(
    alice: User,
    bob: User,
    staff: User,
    team: Team,
    alice_conversation: Conversation,
    generation_service: Any,
) -> None:
    await sync_to_async(sharing.set_visibility)(alice, alice_conversation.id, "team", team.id)
    bobs_welcome = await open_account_socket(bob)
    admin = await sync_to_async(client_for)(staff)
    response = await sync_to_async(admin.post)(
        f"/admin/conversations/user/{alice.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert await bobs_welcome.until_type("shared.unlisted") == unlisted(alice_conversation)
    await bobs_welcome.close()
