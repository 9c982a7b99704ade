"""A tool call is answered only once its reply has finished asking (``finish_reason`` is
``tool_calls``): a reply still streaming, or one that stopped short (cancelled, interrupted,
failed), has no call to answer yet. Such an answer is a ``conflict``, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from conversations import actions
from conversations.models import Conversation, Message, User
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

CALL = {
    "id": "call_00_abc",
    "type": "function",
    "function": {"name": "lookup_ticket", "arguments": '{"key": "OP'},
}


def reply_asking_for_a_tool(
    user: User, conversation: Conversation, status: str, finish_reason: str = ""
) -> Message:
    """A reply whose row holds a tool call (as a checkpoint saves one mid-stream); its task,
    if any, runs on another worker."""
    turn = actions.send_message(
        user,
        conversation.id,
        client_id="c1",
        content="Use lookup_ticket for OPS-17",
        channel="generation.other!x",
    )
    Message.objects.filter(pk=turn.reply.pk).update(
        status=status,
        finish_reason=finish_reason,
        seq=12,
        tool_calls=[CALL],
        heartbeat_at=timezone.now(),
    )
    return turn.reply


@pytest.mark.parametrize(
    ("status", "finish_reason"),
    [
        (Message.Status.STREAMING, ""),
        (Message.Status.CANCELLED, ""),
        (Message.Status.INTERRUPTED, ""),
        (Message.Status.COMPLETE, "length"),
    ],
)
async def test_a_tool_call_of_a_reply_that_has_not_finished_asking_cannot_be_answered(
    alice: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
    status: str,
    finish_reason: str,
) -> None:
    reply = await sync_to_async(reply_asking_for_a_tool)(
        alice, alice_conversation, status, finish_reason
    )
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {
            "type": "tool.answer",
            "reply_id": str(reply.pk),
            "tool_call_id": CALL["id"],
            "content": '{"status": "open"}',
            "client_id": "t1",
        }
    )
    answer = await socket.until(lambda f: f["type"] in ("error", "message.created"))
    await socket.close()
    assert (answer["type"], answer.get("code")) == ("error", "conflict"), answer
    assert not await Message.objects.filter(role=Message.Role.TOOL).aexists()
    assert await Message.objects.filter(role=Message.Role.ASSISTANT).acount() == 1
