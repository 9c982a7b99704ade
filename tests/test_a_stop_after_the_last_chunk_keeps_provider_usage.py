"""A Stop that lands after the provider's last chunk (its usage) but before the end of the
stream charges the provider's own count, not an estimate: the usage had already come."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conversations.models import Conversation, Message, UsageRecord, User
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

ANSWER = "Five short words, then silence."


async def test_a_stop_after_the_usage_chunk_charges_the_providers_count(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    # The simulator sends the whole answer and its usage, then holds the stream open without
    # its closing [DONE] until the client leaves.
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c1",
            "content": f"Say it. [[sim: stall_after=1000 say={ANSWER}]]",
        }
    )
    text = ""
    while text != ANSWER:
        frame = await socket.receive(timeout=20)
        if frame["type"] == "reply.delta":
            text += frame.get("content", "")
    await asyncio.sleep(1.5)  # the finish chunk (with usage) follows the last word at once
    reply_id = socket.of_type("message.created")[1]["message"]["id"]
    await socket.send({"type": "reply.cancel", "reply_id": reply_id})
    end = await socket.until_reply_ends()
    assert end["type"] == "reply.failed" and end["status"] == "cancelled", end
    await socket.close()

    reply = await Message.objects.aget(pk=reply_id)
    assert reply.content == ANSWER
    assert reply.usage and reply.usage["completion_tokens"] > 0, reply.usage
    record = await UsageRecord.objects.aget(message_id=reply_id)
    assert record.outcome == "cancelled"
    assert not record.estimated, "the provider's usage had come: no estimate"
    assert record.completion_tokens == reply.usage["completion_tokens"]
    assert record.prompt_tokens == reply.usage["prompt_tokens"]
