"""An error about a message id names the field the frame used for it: ``reply_id`` where a
reply was expected, ``message_id`` where a question was."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import Conversation, User
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def test_an_id_of_the_wrong_kind_of_message_is_refused_naming_the_field_sent(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send({"type": "message.send", "client_id": "c1", "content": "[[sim: say=Hi.]]"})
    question = (await socket.until_type("message.created"))["message"]["id"]
    reply = (await socket.until_reply_ends())["reply_id"]
    refused = []
    for frame in (
        {"type": "reply.sync", "reply_id": question, "after_seq": 0},
        {"type": "reply.regenerate", "reply_id": question, "client_id": "r1"},
        {"type": "reply.continue", "reply_id": question},
        {"type": "reply.cancel", "reply_id": question},
        {
            "type": "tool.answer",
            "reply_id": question,
            "tool_call_id": "call_0",
            "content": "{}",
            "client_id": "t1",
        },
        {"type": "message.edit", "message_id": reply, "content": "Again", "client_id": "e1"},
    ):
        await socket.send(frame)
        error = await socket.until_type("error")
        refused.append((frame["type"], error["code"], error.get("param")))
    await socket.close()
    assert refused == [
        ("reply.sync", "invalid_parameter", "reply_id"),
        ("reply.regenerate", "invalid_parameter", "reply_id"),
        ("reply.continue", "invalid_parameter", "reply_id"),
        ("reply.cancel", "invalid_parameter", "reply_id"),
        ("tool.answer", "invalid_parameter", "reply_id"),
        ("message.edit", "invalid_parameter", "message_id"),
    ]
