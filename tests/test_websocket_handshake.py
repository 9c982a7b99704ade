"""The websocket refuses foreign origins and anyone who may not see the conversation."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from chatsite.asgi import application
from chatsite.origins import normalize_origin
from conversations.models import Conversation, User
from tests.support import client_for

pytestmark = pytest.mark.django_db(transaction=True)
TRUSTED = "http://localhost:8000"  # the default CSRF_TRUSTED_ORIGINS (PORT 8000)


async def session_cookie(user: User) -> str:
    client = await sync_to_async(client_for)(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def try_connect(path: str, *, origin: str | None, cookie: str | None) -> bool:
    headers = []
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    await communicator.disconnect()
    return connected


def path_of(conversation: Conversation) -> str:
    return f"/ws/conversations/{conversation.id}/"


async def test_the_owner_connects_from_a_trusted_origin(
    alice: User, alice_conversation: Conversation
) -> None:
    assert await try_connect(
        path_of(alice_conversation), origin=TRUSTED, cookie=await session_cookie(alice)
    )


@pytest.mark.parametrize(
    "origin",
    [
        None,
        "null",
        "http://evil.example:8000",
        "https://localhost:8000",  # scheme matters
        "http://localhost:8001",  # port matters
        "http://localhost",  # the default port is 80, not 8000
        "not a url",
    ],
)
async def test_an_untrusted_or_missing_origin_is_refused(
    alice: User, alice_conversation: Conversation, origin: str | None
) -> None:
    cookie = await session_cookie(alice)
    assert not await try_connect(path_of(alice_conversation), origin=origin, cookie=cookie)


async def test_an_anonymous_visitor_is_refused(alice_conversation: Conversation) -> None:
    assert not await try_connect(path_of(alice_conversation), origin=TRUSTED, cookie=None)


async def test_a_stranger_is_refused(charlie: User, alice_conversation: Conversation) -> None:
    cookie = await session_cookie(charlie)
    assert not await try_connect(path_of(alice_conversation), origin=TRUSTED, cookie=cookie)


async def test_an_unknown_conversation_is_refused(alice: User) -> None:
    cookie = await session_cookie(alice)
    path = "/ws/conversations/00000000-0000-0000-0000-000000000000/"
    assert not await try_connect(path, origin=TRUSTED, cookie=cookie)


def test_origins_are_normalized_with_default_ports() -> None:
    assert normalize_origin("HTTPS://Chat.Example.com") == ("https", "chat.example.com", 443)
    assert normalize_origin("http://localhost:8000") == ("http", "localhost", 8000)
    assert normalize_origin("ftp://x") is None
