"""A frame holding a lone surrogate (``"\\ud800"``, valid JSON, not text UTF-8 can carry) in
its ``type`` or ``client_id`` is refused with an error frame, and the socket goes on: the error
repeats those values escaped. Before, it repeated them as they came: daphne could not encode
the frame, and closed the socket (1011) without a word; a page resending its unanswered frames
on reconnecting would have looped. Both kinds of socket, on a real worker (the in-process
test client encodes nothing)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, User
from simulator.testing import running_simulator
from tests.servers import WorkerSocket, daphne_worker, session_cookie
from tests.support import SIM_KEY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.fixture
def worker(chat_model: Any) -> Iterator[str]:
    with running_simulator(api_key=SIM_KEY) as upstream, daphne_worker(upstream, SIM_KEY) as base:
        yield base


@pytest.mark.parametrize(
    ("raw", "echoed"),
    [
        (
            '{"type": "message.send", "client_id": "a\\ud800", "content": "hi"}',
            {"request_type": "message.send", "client_id": "a\\ud800"},
        ),
        ('{"type": "\\ud800"}', {"request_type": "\\ud800"}),
    ],
)
async def test_a_conversation_socket_answers_and_goes_on(
    alice: User, alice_conversation: Conversation, worker: str, raw: str, echoed: dict[str, str]
) -> None:
    cookie = await sync_to_async(session_cookie)(alice)
    socket = await WorkerSocket.open(worker, alice_conversation.id, cookie)
    try:
        await socket.connection.send(raw)
        error = await socket.until("error", timeout=10)
        assert error["code"] == "invalid_parameter"
        assert {name: error.get(name) for name in echoed} == echoed
        await socket.send({"type": "ping"})
        assert (await socket.until("pong", timeout=10))["type"] == "pong"
    finally:
        await socket.close()


async def test_the_account_socket_answers_and_goes_on(alice: User, worker: str) -> None:
    cookie = await sync_to_async(session_cookie)(alice)
    socket = await WorkerSocket.open_account(worker, cookie)
    try:
        await socket.connection.send('{"type": "\\ud800"}')
        error = await socket.until("error", timeout=10)
        assert error["request_type"] == "\\ud800"
        await socket.send({"type": "ping"})
        assert (await socket.until("pong", timeout=10))["type"] == "pong"
    finally:
        await socket.close()
