"""Staff who may delete conversations can delete one that holds messages, on its page or with
"delete selected": its messages and share links go with it, its ledger rows stay, each row the
delete changes is audited, and its open views close as after the owner's delete (4404). The
admin refused it ("Cannot delete", 403): messages are read-only in the admin, so Django counted
them as objects its user may not delete."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission

from conversations import sharing
from conversations.models import (
    AuditEntry,
    Conversation,
    Message,
    ShareLink,
    UsageRecord,
    User,
)
from tests.support import client_for, make_user, open_socket
from tests.test_deleting_an_account_closes_its_views import closed_code

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def moderator(*codenames: str) -> User:
    user = make_user("moderator", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def delete(client: Any, conversation: Conversation, how: str) -> Any:
    if how == "delete page":
        page = f"/admin/conversations/conversation/{conversation.pk}/delete/"
        confirm = client.get(page)
        assert confirm.status_code == 200
        assert "Cannot delete" not in confirm.content.decode()
        return client.post(page, {"post": "yes"})
    return client.post(
        "/admin/conversations/conversation/",
        {"action": "delete_selected", "_selected_action": [conversation.pk], "post": "yes"},
    )


@pytest.mark.parametrize("how", ["delete page", "changelist action"])
async def test_a_conversation_with_messages_is_deleted_and_its_ledger_stays(
    alice: User,
    bob: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
    how: str,
) -> None:
    alices_view = await open_socket(alice, alice_conversation)
    await alices_view.send(
        {"type": "message.send", "client_id": "a1", "content": "[[sim: say=Noted.]]"}
    )
    assert (await alices_view.until_reply_ends())["type"] == "reply.completed"
    link, token = await sync_to_async(sharing.create_share_link)(alice, alice_conversation.id)
    bobs_view = await open_socket(bob, alice_conversation, link=token)
    fork = await sync_to_async(sharing.fork_conversation)(
        bob, alice_conversation.id, link_token=token
    )
    ledger = [r async for r in UsageRecord.objects.filter(conversation=alice_conversation)]
    assert ledger
    staff = await sync_to_async(moderator)(
        "view_conversation", "delete_conversation", "delete_sharelink"
    )

    admin = await sync_to_async(client_for)(staff)
    response = await sync_to_async(delete)(admin, alice_conversation, how)
    assert response.status_code == 302, response.content.decode()[:2000]

    assert not await Conversation.objects.filter(pk=alice_conversation.pk).aexists()
    assert not await Message.objects.filter(conversation_id=alice_conversation.pk).aexists()
    assert not await ShareLink.objects.filter(pk=link.pk).aexists()
    # The ledger keeps every call, and what it cost, without the link to the conversation.
    for record in ledger:
        kept = await UsageRecord.objects.aget(pk=record.pk)
        assert (kept.conversation_id, kept.message_id) == (None, None)
        assert (kept.user_id, kept.total_tokens, kept.cost) == (
            alice.pk,
            record.total_tokens,
            record.cost,
        )
    # Bob's fork stays, without its origin.
    await fork.arefresh_from_db()
    assert fork.forked_from_id is None

    entries = {
        (e.action, e.target_type, e.target_id): e
        async for e in AuditEntry.objects.filter(actor=staff)
    }
    assert set(entries) == {
        ("delete", "conversation", str(alice_conversation.pk)),
        ("delete", "sharelink", str(link.pk)),
        ("change", "conversation", str(fork.pk)),
    }
    gone = entries["delete", "conversation", str(alice_conversation.pk)]
    assert (gone.target_repr, gone.before["owner"], gone.after) == ("Deploy notes", alice.pk, None)
    forked = entries["change", "conversation", str(fork.pk)]
    assert forked.before["forked_from"] is not None and forked.after["forked_from"] is None

    assert await closed_code(alices_view) == 4404
    assert await closed_code(bobs_view) == 4404


def test_without_the_delete_permission_a_conversation_stays(
    alice: User, alice_conversation: Conversation
) -> None:
    Message.objects.create(conversation=alice_conversation, role=Message.Role.USER, content="Hi")
    viewer = moderator("view_conversation")
    page = f"/admin/conversations/conversation/{alice_conversation.pk}/delete/"
    assert client_for(viewer).post(page, {"post": "yes"}).status_code == 403
    assert Conversation.objects.filter(pk=alice_conversation.pk).exists()


def test_the_confirmation_lists_twenty_messages_and_counts_them_all(
    alice: User, alice_conversation: Conversation
) -> None:
    """It listed every message by name: a long conversation made a page of thousands of lines."""
    Message.objects.bulk_create(
        Message(conversation=alice_conversation, role=Message.Role.USER, content=f"note {n}")
        for n in range(300)
    )
    staff = moderator("view_conversation", "delete_conversation")
    page = client_for(staff).get(
        f"/admin/conversations/conversation/{alice_conversation.pk}/delete/"
    )
    body = page.content.decode()
    assert page.status_code == 200 and "Cannot delete" not in body
    assert "Messages: 300" in body  # the summary counts them all
    assert body.count("<li>Message: ") == 20
    assert "… and 280 more" in body
