"""The websocket refuses foreign origins (HTTP 403), and anyone who may not see the
conversation with a close code the browser can read (4401 signed out, 4404 not found)."""

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
    return await refusal(path, origin=origin, cookie=cookie) is None


async def refusal(path: str, *, origin: str | None, cookie: str | None) -> int | str | None:
    """None if the socket opens; "http 403" if the handshake is refused (a foreign origin);
    else the close code it is refused with right after the handshake (the browser sees that)."""
    headers = []
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    if not connected:
        return "http 403"
    first = await communicator.receive_output(timeout=5)
    await communicator.disconnect()
    return int(first["code"]) if first["type"] == "websocket.close" else None


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


async def test_a_foreign_origin_is_refused_before_the_handshake(
    alice: User, alice_conversation: Conversation
) -> None:
    cookie = await session_cookie(alice)
    path = path_of(alice_conversation)
    assert await refusal(path, origin="http://evil.example:8000", cookie=cookie) == "http 403"


async def test_an_anonymous_visitor_is_refused_as_signed_out(
    alice_conversation: Conversation,
) -> None:
    assert await refusal(path_of(alice_conversation), origin=TRUSTED, cookie=None) == 4401


async def test_a_stranger_is_refused_as_not_found(
    charlie: User, alice_conversation: Conversation
) -> None:
    cookie = await session_cookie(charlie)
    assert await refusal(path_of(alice_conversation), origin=TRUSTED, cookie=cookie) == 4404


async def test_an_unknown_conversation_is_refused_as_not_found(alice: User) -> None:
    cookie = await session_cookie(alice)
    path = "/ws/conversations/00000000-0000-0000-0000-000000000000/"
    assert await refusal(path, origin=TRUSTED, cookie=cookie) == 4404


def test_origins_are_normalized_with_default_ports() -> None:
    assert normalize_origin("HTTPS://Chat.Example.com") == ("https", "chat.example.com", 443)
    assert normalize_origin("http://localhost:8000") == ("http", "localhost", 8000)
    assert normalize_origin("ftp://x") is None
