"""A conversation deleted anywhere — by its owner in the chat, on its admin page, by the admin's
"delete selected", by its admin form — is announced, after commit, to its owner's own sockets
(``conversation.deleted``: their pages unlist it), the welcome page's too; an undone delete is
listed again (``conversation.listed``). Not to another account's sockets, and not to a socket
that sees a conversation only through a share link. Deletes were announced to nobody: the
owner's other tabs kept listing the conversation, and one showing it, as if it were live."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from conversations import sharing
from conversations.models import Conversation, ModelConfig, User
from tests.support import Socket, admin_form, client_for, open_account_socket, open_socket
from tests.test_deleting_an_account_closes_its_views import closed_code

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

TOLD = ("conversation.deleted", "conversation.listed")


async def deleted_ids(socket: Socket, count: int) -> set[str]:
    """The ids of the ``count`` conversations the socket is told are deleted (in one frame or
    several: the admin deletes selected conversations one by one)."""
    ids: set[str] = set()
    while len(ids) < count:
        ids.update((await socket.until_type("conversation.deleted"))["ids"])
    return ids


async def nothing_told(socket: Socket) -> None:
    while not await socket.communicator.receive_nothing(timeout=1):
        assert (await socket.receive())["type"] not in TOLD, socket.frames


@pytest.fixture
async def bobs(bob: User, chat_model: ModelConfig) -> Conversation:
    return await Conversation.objects.acreate(owner=bob, model=chat_model, title="Bob's")


async def test_the_owners_delete_and_its_undo_reach_the_owners_sockets_only(
    alice: User,
    bob: User,
    alice_conversation: Conversation,
    bobs: Conversation,
    chat_model: ModelConfig,
    generation_service: Any,
) -> None:
    doomed = await Conversation.objects.acreate(owner=alice, model=chat_model, title="Old plan")
    _, token = await sync_to_async(sharing.create_share_link)(bob, bobs.id)
    other_tab = await open_socket(alice, alice_conversation)
    welcome = await open_account_socket(alice)
    showing_it = await open_socket(alice, doomed)
    teammate = await open_socket(bob, bobs)
    teammates_welcome = await open_account_socket(bob)
    # Alice's own, but on Bob's conversation through his link: it hears only that.
    through_link = await open_socket(alice, bobs, link=token)

    client = await sync_to_async(client_for)(alice)
    deleted = await sync_to_async(client.post)(f"/c/{doomed.id}/delete/")
    assert deleted.status_code == 200
    told = {"type": "conversation.deleted", "ids": [str(doomed.id)]}
    assert await other_tab.until_type("conversation.deleted") == told
    assert await welcome.until_type("conversation.deleted") == told
    # The tab showing it is told, then closed as gone.
    assert await showing_it.until_type("conversation.deleted") == told
    gone = await showing_it.until_type("error")
    assert gone["code"] == "not_found"
    assert await closed_code(showing_it) == 4404

    restored = await sync_to_async(client.post)(f"/c/{doomed.id}/restore/")
    assert restored.status_code == 200
    listed = {
        "type": "conversation.listed",
        "conversation": {"id": str(doomed.id), "title": "Old plan"},
    }
    assert await other_tab.until_type("conversation.listed") == listed
    assert await welcome.until_type("conversation.listed") == listed

    for socket in (teammate, teammates_welcome, through_link):
        await nothing_told(socket)
    for socket in (other_tab, welcome, teammate, teammates_welcome, through_link):
        await socket.close()


def delete_in_the_admin(how: str, staff: User, conversations: list[Conversation]) -> None:
    admin = client_for(staff)
    if how == "delete page":
        (conversation,) = conversations
        response = admin.post(
            f"/admin/conversations/conversation/{conversation.pk}/delete/", {"post": "yes"}
        )
    elif how == "changelist action":
        response = admin.post(
            "/admin/conversations/conversation/",
            {
                "action": "delete_selected",
                "_selected_action": [c.pk for c in conversations],
                "post": "yes",
            },
        )
    else:  # its admin form, "deleted at" filled in
        (conversation,) = conversations
        page = f"/admin/conversations/conversation/{conversation.pk}/change/"
        form = admin_form(admin, page, deleted_at_0="2026-01-02", deleted_at_1="10:00:00")
        response = admin.post(page, form)
    assert response.status_code == 302, response.content.decode()[:2000]


@pytest.mark.parametrize("how", ["delete page", "changelist action", "admin form"])
async def test_a_delete_in_the_admin_reaches_each_owners_sockets_with_their_own(
    alice: User,
    bob: User,
    staff: User,
    alice_conversation: Conversation,
    bobs: Conversation,
    chat_model: ModelConfig,
    generation_service: Any,
    how: str,
) -> None:
    first = await Conversation.objects.acreate(owner=alice, model=chat_model, title="One")
    second = await Conversation.objects.acreate(owner=alice, model=chat_model, title="Two")
    doomed = [first, second, bobs] if how == "changelist action" else [first]
    alices = await open_account_socket(alice)
    alices_tab = await open_socket(alice, alice_conversation)
    bobs_welcome = await open_account_socket(bob)

    await sync_to_async(delete_in_the_admin)(how, staff, doomed)

    mine = {str(c.id) for c in doomed if c.owner_id == alice.pk}
    for socket in (alices, alices_tab):
        assert await deleted_ids(socket, len(mine)) == mine
    if how == "changelist action":
        assert await deleted_ids(bobs_welcome, 1) == {str(bobs.id)}
    for socket in (alices, alices_tab, bobs_welcome):
        await nothing_told(socket)
        await socket.close()


async def test_a_conversation_restored_or_given_away_in_the_admin_form_moves_between_lists(
    alice: User,
    bob: User,
    staff: User,
    chat_model: ModelConfig,
    generation_service: Any,
) -> None:
    conversation = await Conversation.objects.acreate(owner=alice, model=chat_model, title="Plan")
    alices = await open_account_socket(alice)
    bobs_welcome = await open_account_socket(bob)
    admin = await sync_to_async(client_for)(staff)
    page = f"/admin/conversations/conversation/{conversation.pk}/change/"

    def save(**changes: Any) -> None:
        response = admin.post(page, admin_form(admin, page, **changes))
        assert response.status_code == 302, response.content.decode()[:2000]

    await sync_to_async(save)(deleted_at_0="2026-01-02", deleted_at_1="10:00:00")
    assert (await alices.until_type("conversation.deleted"))["ids"] == [str(conversation.id)]
    await sync_to_async(save)(deleted_at_0="", deleted_at_1="")
    listed = await alices.until_type("conversation.listed")
    assert listed["conversation"] == {"id": str(conversation.id), "title": "Plan"}

    await sync_to_async(save)(owner=str(bob.pk))
    assert (await alices.until_type("conversation.deleted"))["ids"] == [str(conversation.id)]
    listed = await bobs_welcome.until_type("conversation.listed")
    assert listed["conversation"] == {"id": str(conversation.id), "title": "Plan"}
    for socket in (alices, bobs_welcome):
        await nothing_told(socket)
        await socket.close()


async def test_a_delete_that_is_rolled_back_is_not_announced(
    alice: User, alice_conversation: Conversation, generation_service: Any
) -> None:
    welcome = await open_account_socket(alice)

    def delete_then_fail() -> None:
        with pytest.raises(RuntimeError), transaction.atomic():
            Conversation.objects.filter(pk=alice_conversation.pk).delete()
            raise RuntimeError("rolled back")

    await sync_to_async(delete_then_fail)()
    assert await Conversation.objects.filter(pk=alice_conversation.pk).aexists()
    await nothing_told(welcome)
    await welcome.close()


async def test_a_delete_of_many_at_once_is_told_once_to_each_owner(
    alice: User,
    bob: User,
    alice_conversation: Conversation,
    bobs: Conversation,
    chat_model: ModelConfig,
    generation_service: Any,
) -> None:
    another = await Conversation.objects.acreate(owner=alice, model=chat_model, title="Two")
    alices = await open_account_socket(alice)
    bobs_welcome = await open_account_socket(bob)

    await sync_to_async(Conversation.objects.all().delete)()

    told = await alices.until_type("conversation.deleted")
    assert sorted(told["ids"]) == sorted([str(alice_conversation.id), str(another.id)])
    assert (await bobs_welcome.until_type("conversation.deleted"))["ids"] == [str(bobs.id)]
    for socket in (alices, bobs_welcome):
        await nothing_told(socket)
        await socket.close()
