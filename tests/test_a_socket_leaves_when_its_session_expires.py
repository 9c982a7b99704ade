"""A signed-in socket leaves (4401, "You are signed out.") when its session expires: nothing
announces an expiry, as a sign-out is announced, so the socket keeps a timer of its own. Before,
a tab left open went on sending messages, and spending the account's tokens, on a session that
no page would accept any more. A session extended meanwhile keeps its sockets open."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from conversations.models import Conversation, User
from tests.support import client_for, closed_code, open_account_socket, open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def a_session_expiring_in(user: User, seconds: float) -> Client:
    client = await sync_to_async(client_for)(user)
    await Session.objects.filter(session_key=client.cookies["sessionid"].value).aupdate(
        expire_date=timezone.now() + timedelta(seconds=seconds)
    )
    return client


async def test_a_conversations_socket_leaves_when_its_session_expires(
    alice: User, alice_conversation: Conversation, generation_service: Any
) -> None:
    socket = await open_socket(
        alice, alice_conversation, client=await a_session_expiring_in(alice, 1.5)
    )
    told = await socket.until_type("error", timeout=10)
    assert (told["code"], told["message"]) == ("access_revoked", "You are signed out.")
    assert await closed_code(socket) == 4401


async def test_the_accounts_socket_leaves_when_its_session_expires(
    alice: User, generation_service: Any
) -> None:
    welcome = await open_account_socket(alice, await a_session_expiring_in(alice, 1.5))
    assert (await welcome.until_type("error", timeout=10))["code"] == "access_revoked"
    assert await closed_code(welcome) == 4401


async def test_a_session_extended_meanwhile_keeps_its_socket(
    alice: User, alice_conversation: Conversation, generation_service: Any
) -> None:
    client = await a_session_expiring_in(alice, 1.5)
    socket = await open_socket(alice, alice_conversation, client=client)
    # Extended before the expiry the socket saw at its start (a sign-in kept alive).
    await Session.objects.filter(session_key=client.cookies["sessionid"].value).aupdate(
        expire_date=timezone.now() + timedelta(hours=1)
    )
    await asyncio.sleep(2.5)
    await socket.send({"type": "ping"})
    assert (await socket.receive())["type"] == "pong"
    await socket.close()
