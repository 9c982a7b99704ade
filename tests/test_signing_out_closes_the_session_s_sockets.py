"""Signing out closes the sockets that session opened (4401, as a socket opened signed out is
refused), wherever they are; the account's sockets of another session stay. They stayed open,
so a tab left signed in on a socket went on posting, spending the account's tokens, and
reading after its owner had signed out."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from conversations.models import Conversation, Message, User
from tests.support import Socket, client_for, open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def socket_of(client: Client, conversation: Conversation) -> Socket:
    return await open_socket(conversation.owner, conversation, client=client)


async def test_signing_out_closes_that_session_s_sockets_only(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    laptop = await sync_to_async(client_for)(alice)
    phone = await sync_to_async(client_for)(alice)
    on_laptop = await socket_of(laptop, alice_conversation)
    on_phone = await socket_of(phone, alice_conversation)

    response = await sync_to_async(laptop.post)("/accounts/logout/")
    assert response.status_code == 302

    error = await on_laptop.until_type("error")
    assert error["code"] == "access_revoked" and "signed out" in error["message"], error
    closed = await on_laptop.communicator.receive_output(timeout=10)
    assert closed == {"type": "websocket.close", "code": 4401}
    assert not await Message.objects.filter(conversation=alice_conversation).aexists()

    # The other session's socket is still Alice's and still works.
    await on_phone.send(
        {"type": "message.send", "client_id": "p1", "content": "[[sim: say=From the phone.]]"}
    )
    assert (await on_phone.until_reply_ends())["type"] == "reply.completed"
    await on_phone.close()


async def test_a_new_password_closes_the_other_sessions_sockets_at_once(
    alice: User, alice_conversation: Conversation, simulator: str
) -> None:
    """A password is changed to lock someone out: the sessions it ends (Django's rule) lose
    their sockets at once. They stayed open until some later re-check (a sharing change)."""
    from tests.support import PASSWORD

    laptop = await sync_to_async(client_for)(alice)
    stolen = await sync_to_async(client_for)(alice)
    on_stolen = await socket_of(stolen, alice_conversation)

    response = await sync_to_async(laptop.post)(
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "n3w-Passw0rd!x",
            "new_password2": "n3w-Passw0rd!x",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]

    error = await on_stolen.until_type("error", timeout=5)
    assert error["code"] == "access_revoked" and "signed out" in error["message"], error
    closed = await on_stolen.communicator.receive_output(timeout=10)
    assert closed == {"type": "websocket.close", "code": 4401}


async def test_a_password_set_in_the_admin_closes_the_account_s_sockets(
    alice: User, staff: User, alice_conversation: Conversation, simulator: str
) -> None:
    alices = await sync_to_async(client_for)(alice)
    on_alices = await socket_of(alices, alice_conversation)
    admin = await sync_to_async(client_for)(staff)
    response = await sync_to_async(admin.post)(
        f"/admin/conversations/user/{alice.pk}/password/",
        {"password1": "n3w-Passw0rd!x", "password2": "n3w-Passw0rd!x", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    error = await on_alices.until_type("error", timeout=5)
    assert error["code"] == "access_revoked", error
    closed = await on_alices.communicator.receive_output(timeout=10)
    assert closed == {"type": "websocket.close", "code": 4401}


async def test_a_new_password_on_the_admin_s_own_page_closes_the_other_sessions_sockets(
    staff: User, chat_model: Any, simulator: str
) -> None:
    """The admin's "Change password" (a staff account's own) ends the other sessions as the
    site's page does, and their sockets with them: it was Django's page, which told none."""
    from tests.support import PASSWORD

    conversation = await Conversation.objects.acreate(owner=staff, model=chat_model)
    desk = await sync_to_async(client_for)(staff)
    stolen = await sync_to_async(client_for)(staff)
    on_stolen = await socket_of(stolen, conversation)

    response = await sync_to_async(desk.post)(
        "/admin/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "n3w-Passw0rd!x",
            "new_password2": "n3w-Passw0rd!x",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]

    error = await on_stolen.until_type("error", timeout=5)
    assert error["code"] == "access_revoked" and "signed out" in error["message"], error
    closed = await on_stolen.communicator.receive_output(timeout=10)
    assert closed == {"type": "websocket.close", "code": 4401}
