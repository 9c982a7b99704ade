"""A frame over daphne's 1 MiB is not read: the worker closes the socket with 1009 (Message
Too Big, the WebSocket standard's code for it), and goes on serving; a text frame that is not
UTF-8 is closed with 1007. Before, both were dropped without a close frame (1006: the client
could not tell why; ``chatsite/twisted_websockets.py``). A frame up to that size
but over ``MAX_FRAME_CHARS`` is read, and answered with an ``error`` frame
(tests/test_malformed_frames.py); the page never sends either (a message is at most 100,000
characters).

A real daphne worker and a real websocket client over TCP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import websockets
from asgiref.sync import sync_to_async

from conversations.consumers import MAX_FRAME_CHARS
from conversations.models import Conversation, ModelConfig, User
from simulator.testing import running_simulator
from tests.servers import WorkerSocket, daphne_worker, session_cookie
from tests.support import SIM_KEY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

DAPHNE_MAX_MESSAGE_BYTES = 1024 * 1024


async def _closed_with(socket: WorkerSocket) -> int:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await socket.receive()
    assert closed.value.rcvd is not None, "dropped without a close frame"
    return closed.value.rcvd.code


@pytest.fixture
def worker(chat_model: ModelConfig) -> Iterator[str]:
    with (
        running_simulator(api_key=SIM_KEY) as upstream,
        daphne_worker(upstream, SIM_KEY) as base,
    ):
        yield base


async def test_a_frame_over_a_mebibyte_closes_the_socket_and_the_worker_serves_on(
    alice: User, alice_conversation: Conversation, worker: str
) -> None:
    assert MAX_FRAME_CHARS * 4 < DAPHNE_MAX_MESSAGE_BYTES  # ours is read first, in any script
    cookie = await sync_to_async(session_cookie)(alice)
    socket = await WorkerSocket.open(worker, alice_conversation.id, cookie)
    await socket.connection.send("x" * (DAPHNE_MAX_MESSAGE_BYTES + 1))
    assert await _closed_with(socket) == 1009

    again = await WorkerSocket.open(worker, alice_conversation.id, cookie)
    await again.send({"type": "ping"})
    assert (await again.until("pong"))["type"] == "pong"
    await again.close()


async def test_a_text_frame_that_is_not_utf8_closes_the_socket_saying_so(
    alice: User, alice_conversation: Conversation, worker: str
) -> None:
    cookie = await sync_to_async(session_cookie)(alice)
    socket = await WorkerSocket.open(worker, alice_conversation.id, cookie)
    await socket.connection.send(b'{"type": "ping", "x": "\xff"}', text=True)
    assert await _closed_with(socket) == 1007
