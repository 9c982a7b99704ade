"""A socket opened on a path that names no conversation — an id that is no UUID, a path of no
socket at all — is refused as one on a missing conversation is (4404, which the page reads and
stops reconnecting on), not failed with a 500 that the page retries for ever and that logs a
traceback each time."""

from __future__ import annotations

import logging

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from chatsite.asgi import application
from conversations.models import User
from tests.support import TRUSTED_ORIGIN, client_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    "path", ["/ws/conversations/not-a-uuid/", "/ws/conversations/", "/ws/nothing-here/"]
)
async def test_a_socket_on_no_conversations_path_is_closed_with_4404(
    alice: User, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = await sync_to_async(client_for)(alice)
    communicator = WebsocketCommunicator(
        application,
        path,
        headers=[
            (b"origin", TRUSTED_ORIGIN.encode()),
            (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
        ],
    )
    with caplog.at_level(logging.ERROR):
        connected, _ = await communicator.connect(timeout=10)
        assert connected
        closed = await communicator.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 4404}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    await communicator.wait()


async def test_a_socket_on_no_conversations_path_keeps_the_origin_check(alice: User) -> None:
    communicator = WebsocketCommunicator(
        application, "/ws/nothing-here/", headers=[(b"origin", b"http://evil.invalid")]
    )
    connected, _ = await communicator.connect(timeout=10)
    assert not connected
