"""Whatever a client sends, it gets an error frame and the socket keeps working."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import Conversation, Message, User
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        ("{not json", "frame"),
        ("[1, 2, 3]", "type"),
        ('{"type": 42}', "type"),
        ('{"type": "reply.explode"}', "type"),
        ('{"type": "message.send", "client_id": 7, "content": "hi"}', "client_id"),
        ('{"type": "message.send", "client_id": "x", "content": ["hi"]}', "content"),
        ('{"type": "message.send", "client_id": "x", "content": "   "}', "content"),
        ('{"type": "message.send", "client_id": "x", "content": "hi", "params": []}', "params"),
        (
            '{"type": "reply.sync", "reply_id": "00000000-0000-0000-0000-000000000000", "after_seq": -1}',
            "after_seq",
        ),
        ('{"type": "message.send", "client_id": "' + "x" * 65 + '", "content": "hi"}', "client_id"),
    ],
)
async def test_a_malformed_frame_gets_an_error_naming_the_problem(
    alice: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
    raw: str,
    param: str,
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send_raw(raw)
    error = await socket.until_type("error")
    assert error["param"] == param, error
    # The worker is unhurt: a good frame still works on the same socket.
    await socket.send(
        {"type": "message.send", "client_id": "ok", "content": "[[sim: say=Still here.]]"}
    )
    assert (await socket.until_reply_ends())["type"] == "reply.completed"
    await socket.close()


async def test_an_oversized_frame_is_refused(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send_raw(
        '{"type": "message.send", "client_id": "big", "content": "' + "a" * 300_000 + '"}'
    )
    error = await socket.until_type("error")
    assert error["param"] == "frame"
    await socket.close()
    assert await Message.objects.acount() == 0


async def test_an_unknown_message_id_is_a_not_found_error(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    for frame in [
        {"type": "reply.cancel", "reply_id": "00000000-0000-0000-0000-000000000000"},
        {"type": "reply.regenerate", "reply_id": "not-a-uuid", "client_id": "r"},
        {"type": "message.edit", "message_id": None, "content": "x", "client_id": "e"},
    ]:
        await socket.send(frame)
        error = await socket.until_type("error")
        assert error["code"] == "not_found", error
    await socket.close()
