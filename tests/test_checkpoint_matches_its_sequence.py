"""A checkpoint stores exactly the text published up to the sequence number it stores: a page
loaded from the row and synced with ``after_seq`` equal to the row's ``seq`` then gets every
piece once. With Redis, publishing a delta is a network round trip, during which the stream
keeps receiving text; that text is not part of the delta being published."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conversations.generation import get_service
from conversations.models import Conversation, Message, User
from tests.servers import redis_url
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

ANSWER = " ".join(f"w{i}" for i in range(10000))


def published_text(frames: list[dict[str, Any]], reply_id: str) -> dict[int, str]:
    """The reply's text after each sequence number, as its deltas built it."""
    text, after = "", {0: ""}
    for frame in frames:
        if frame.get("reply_id") == reply_id and frame["type"] == "reply.delta":
            text += frame.get("content", "")
            after[frame["seq"]] = text
    return after


async def test_every_checkpoint_holds_the_text_of_its_sequence_number(
    alice: User, alice_conversation: Conversation, simulator: str, settings: Any
) -> None:
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url()], "capacity": 1500, "expiry": 30},
        }
    }
    service = get_service()
    await service.ensure_started()
    try:
        socket = await open_socket(alice, alice_conversation)
        await socket.send(
            {
                "type": "message.send",
                "client_id": "c1",
                "content": f"[[sim: tokens_per_s=2000 say={ANSWER}]]",
                "params": {"max_tokens": 8000},
            }
        )
        reply_id = (await socket.until_type("reply.started"))["reply_id"]
        checkpoints: set[tuple[int, str]] = set()
        reading = asyncio.ensure_future(socket.until_reply_ends(timeout=60))
        while not reading.done():
            row = await Message.objects.only("seq", "content", "status").aget(pk=reply_id)
            if row.status == Message.Status.STREAMING:
                checkpoints.add((row.seq, row.content))
            await asyncio.sleep(0.05)
        assert (await reading)["type"] == "reply.completed"
        await socket.close()
    finally:
        layer = service.layer
        await service.stop()
        await layer.close_pools()  # type: ignore[attr-defined]
    after = published_text(socket.frames, reply_id)
    for seq, content in sorted(checkpoints):
        assert content == after[seq], (
            f"checkpoint at seq {seq} holds {len(content) - len(after[seq])} characters more "
            "than the deltas up to it"
        )
    assert len(checkpoints) >= 2, "the stream ended before it was checkpointed twice"
