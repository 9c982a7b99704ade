"""Continuing a reply extends it: the logprobs of the text it already had stay, the
continuation's are appended, and the tool calls it had made stay too."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import actions
from conversations.models import Conversation, Message, User
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

ANSWER = " ".join(f"w{i}" for i in range(60))
CALL = {
    "id": "call_00_abc",
    "type": "function",
    "function": {"name": "lookup_ticket", "arguments": '{"key": "OPS-17"}'},
}


async def test_a_continued_reply_keeps_the_logprobs_of_its_first_part(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c1",
            "content": f"[[sim: finish=length say={ANSWER}]]",
            "params": {"logprobs": True},
        }
    )
    end = await socket.until_reply_ends()
    assert end["finish_reason"] == "length", end
    reply = await Message.objects.aget(pk=end["reply_id"])
    first_part = (reply.logprobs or {}).get("content", [])
    assert first_part
    await socket.send({"type": "reply.continue", "reply_id": end["reply_id"]})
    assert (await socket.until_reply_ends())["type"] == "reply.completed"
    await socket.send({"type": "reply.sync", "reply_id": end["reply_id"], "after_seq": 0})
    snapshot = await socket.until_type("reply.snapshot")
    await socket.close()
    await reply.arefresh_from_db()
    logprobs = (reply.logprobs or {}).get("content", [])
    assert logprobs[: len(first_part)] == first_part
    assert len(logprobs) > len(first_part)
    assert snapshot["logprobs"] == logprobs


def interrupted_reply_with_a_tool_call(user: User, conversation: Conversation) -> Message:
    turn = actions.send_message(
        user,
        conversation.id,
        client_id="c1",
        content="Hello [[sim: tokens_per_s=40 say=It is in review, and due on Friday.]]",
        channel="generation.gone!x",
    )
    Message.objects.filter(pk=turn.reply.pk).update(
        status=Message.Status.INTERRUPTED,
        content="Let me look that up.",
        tool_calls=[CALL],
        seq=4,
        error_code="worker_lost",
    )
    return turn.reply


async def test_a_continued_reply_keeps_its_tool_calls(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    reply = await sync_to_async(interrupted_reply_with_a_tool_call)(alice, alice_conversation)
    socket = await open_socket(alice, alice_conversation)
    await socket.send({"type": "reply.continue", "reply_id": str(reply.pk)})
    started = await socket.until_type("reply.started")
    await socket.send({"type": "reply.sync", "reply_id": str(reply.pk), "after_seq": 0})
    assert (await socket.until_reply_ends())["type"] == "reply.completed"
    [snapshot] = socket.of_type("reply.snapshot")  # the running task's
    await socket.close()
    await reply.arefresh_from_db()
    assert snapshot["status"] == Message.Status.STREAMING
    assert started["seq"] == 4
    assert reply.content.startswith("Let me look that up.")
    assert reply.tool_calls == [CALL]
    assert snapshot["tool_calls"] == [CALL]
