"""A continuation the upstream refuses before it adds anything leaves the reply as it can be
picked up again: interrupted, its text kept — not "failed", the state of a reply that never
had any text, which cannot be continued."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import actions
from conversations.models import Conversation, Message, UsageRecord, User
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def interrupted_reply(user: User, conversation: Conversation) -> Message:
    """A reply whose process died after it had written some text (no task runs it here)."""
    turn = actions.send_message(
        user,
        conversation.id,
        client_id="c1",
        content="Explain the deploy keys [[sim: fault=503]]",
        channel="generation.gone!x",
    )
    Message.objects.filter(pk=turn.reply.pk).update(
        status=Message.Status.INTERRUPTED,
        content="The deploy keys are rotated",
        seq=3,
        error_code="worker_lost",
    )
    return turn.reply


async def test_a_continuation_that_fails_before_any_text_leaves_the_reply_interrupted(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    reply = await sync_to_async(interrupted_reply)(alice, alice_conversation)
    socket = await open_socket(alice, alice_conversation)
    await socket.send({"type": "reply.continue", "reply_id": str(reply.pk)})
    end = await socket.until_reply_ends(timeout=45)
    assert end["type"] == "reply.failed", end
    assert end["status"] == Message.Status.INTERRUPTED, end
    await reply.arefresh_from_db()
    assert reply.status == Message.Status.INTERRUPTED
    assert reply.content == "The deploy keys are rotated"
    # Still continuable: a second Continue is taken (a new call), not refused.
    await socket.send({"type": "reply.continue", "reply_id": str(reply.pk)})
    again = await socket.until(lambda f: f["type"] in ("error", "message.created"))
    assert again["type"] == "message.created", again
    await socket.until_reply_ends(timeout=45)
    await socket.close()
    # The refused calls were not billed.
    records = [r async for r in UsageRecord.objects.filter(message=reply).order_by("created_at")]
    assert [r.completion_tokens for r in records[1:]] == [0, 0]
