"""A reply's end and its stored snapshot carry what all its calls were charged (its Usage
panel): a reply cut off at its limit, then continued, was paid for in two calls."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import Count, Sum

from conversations.models import Conversation, UsageRecord, User
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

ANSWER = " ".join(f"w{i}" for i in range(60))


async def test_a_continued_replys_end_and_snapshot_say_both_calls(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c1",
            "content": f"[[sim: finish=length say={ANSWER}]]",
        }
    )
    first = await socket.until_reply_ends()
    await socket.send({"type": "reply.continue", "reply_id": first["reply_id"]})
    end = await socket.until_reply_ends()
    await socket.send({"type": "reply.sync", "reply_id": first["reply_id"], "after_seq": 0})
    snapshot = await socket.until_type("reply.snapshot")
    await socket.close()

    ledger = await UsageRecord.objects.filter(message_id=first["reply_id"]).aaggregate(
        prompt=Sum("prompt_tokens"),
        hit=Sum("cache_hit_tokens"),
        completion=Sum("completion_tokens"),
        reasoning=Sum("reasoning_tokens"),
        calls=Count("id"),
    )
    charged = {
        "prompt_tokens": ledger["prompt"],
        "cache_hit_tokens": ledger["hit"],
        "completion_tokens": ledger["completion"],
        "reasoning_tokens": ledger["reasoning"],
        "calls": 2,
        "estimated": False,
    }
    assert ledger["calls"] == 2
    assert first["charged"]["calls"] == 1 and not first["charged"]["estimated"]
    assert end["charged"] == charged
    assert snapshot["charged"] == charged
