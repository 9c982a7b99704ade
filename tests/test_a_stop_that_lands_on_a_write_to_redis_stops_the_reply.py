"""A Stop that lands while the reply's task writes a delta to Redis stops the reply.

On Python 3.11, redis-py sends every command through ``asyncio.wait_for`` (the layer sets a
socket timeout), and ``wait_for`` returns the write's result instead of raising a cancellation
that arrives as the write completes. The task's cancellation was lost there, and the reply
streamed on to its end, ``complete``: a user's Stop ignored now and then, from any worker
(tests/test_two_workers.py failed on it once in a few dozen runs)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import actions
from conversations.generation import GenerationTask, get_service, group_name
from conversations.models import Conversation, Message, User
from tests.servers import redis_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


class StopsOnTheFirstDelta:
    """A socket of the conversation whose user presses Stop as the first delta reaches it:
    the stop lands while the task goes on to write that delta to Redis for other workers."""

    def __init__(self) -> None:
        self.task: GenerationTask | None = None

    async def deliver(self, event: dict[str, Any]) -> None:
        if event["type"] == "reply.delta" and event["seq"] == 1 and self.task is not None:
            asyncio.get_running_loop().call_soon(self.task.stop, "cancelled")


async def test_a_stop_landing_on_a_write_to_redis_stops_the_reply(
    alice: User, alice_conversation: Conversation, slow_simulator: str, settings: Any
) -> None:
    # The layer of a deployment with REDIS_URL (chatsite/settings.py), in this process.
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {"address": redis_url(), "socket_timeout": 15, "socket_connect_timeout": 5}
                ],
                "capacity": 1500,
                "expiry": 30,
            },
        }
    }
    service = get_service()
    await service.ensure_started()
    try:
        turn = await sync_to_async(actions.send_message)(
            alice,
            alice_conversation.id,
            client_id="c1",
            content="[[sim: say=" + "word " * 200 + "]]",  # 5 s at 40 tokens a second
            channel=service.channel,
        )
        socket = StopsOnTheFirstDelta()
        await service.join(group_name(alice_conversation.id), socket)
        socket.task = service.start(turn.reply.pk, alice_conversation.id)
        assert socket.task.task is not None
        await asyncio.wait_for(socket.task.task, 15)
        reply = await Message.objects.aget(pk=turn.reply.pk)
        assert reply.status == Message.Status.CANCELLED
        assert len(reply.content) < len("word " * 200) / 2
    finally:
        await service.stop()
