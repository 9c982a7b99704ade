"""Frames of two tasks of one reply reach a socket interleaved: the task of an older call, cut
off from the database and reaped, streams on beside its continuation (the word to give way lost,
or late), and the reaper's end of the older call comes after the row has moved on. The socket
drops what is stale and resyncs once; it never loops nor shows a reply older than it showed.

Before, the reaper's end (older than the row) had the reply read and sent whole again, for
ever (before that, the same recursion in the consumer's dispatch crashed it: 1011); and a
task's late answer to an earlier sync was taken for the current sync's, sending the socket an
older reply than it had been shown (and the earlier sync's timer sent the row on top); and a
delta of the older call whose sequence number followed the continuation's was shown as its
text."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations.frames import CALL
from conversations.generation import group_name
from conversations.models import Conversation, Message, User
from tests.support import open_socket
from tests.test_reaper import orphan_reply

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def _move_the_row(reply_id: Any, seq: int, content: str, channel: str) -> None:
    """The row as the continuation's checkpoint leaves it (its worker the test's channel)."""
    Message.objects.filter(pk=reply_id).update(
        status=Message.Status.STREAMING, seq=seq, content=content, generation_channel=channel
    )


async def test_interleaved_frames_of_two_tasks_of_a_reply(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    service = generation_service
    layer = service.layer
    # The worker holding the reply, played through the channel layer: it is asked for
    # snapshots on this channel, and answers when the test says.
    worker = await layer.new_channel()
    reply = await sync_to_async(orphan_reply)(alice, alice_conversation, heartbeat_age=5)
    reply_id = str(reply.pk)
    kept = "The first half of an answer"
    await sync_to_async(_move_the_row)(reply.pk, 7, kept, worker)
    socket = await open_socket(alice, alice_conversation)
    group = group_name(alice_conversation.id)

    async def publish(frame: dict[str, Any]) -> None:
        await service.publish(group, {"reply_id": reply_id, **frame})

    # The older call's task, as its cut-off worker published it (never checkpointed).
    await publish({"type": "reply.started", "seq": 7})
    await publish({"type": "reply.delta", "seq": 8, "content": " Lost A."})
    await publish({"type": "reply.delta", "seq": 9, "content": " Lost B."})
    await socket.until(lambda f: f["type"] == "reply.delta" and f["seq"] == 9)

    # The continuation has gone on from the row (seq 7) to 12; then the reaper's end of the
    # older call (at seq 7, what the row held when it was reaped) arrives.
    moved = kept + " Continued on."
    await sync_to_async(_move_the_row)(reply.pk, 12, moved, worker)
    await publish(
        {
            "type": "reply.failed",
            "seq": 7,
            "status": "interrupted",
            "code": "worker_lost",
            "message": "The server handling this reply stopped.",
        }
    )
    shown = await socket.until_type("reply.snapshot")
    assert (shown["mode"], shown["seq"], shown["content"]) == ("full", 12, moved)
    await asyncio.sleep(1.0)
    # Nothing more: not the stale end, not the reply read and sent again.
    assert socket.communicator.output_queue.empty()

    # The continuation's next delta follows seamlessly.
    await publish({"type": "reply.delta", "seq": 13, "content": " More."})
    await socket.until(lambda f: f["type"] == "reply.delta" and f["seq"] == 13)

    # The older task streams on: its delta (a gap for the socket) starts a sync, whose
    # request reaches the worker, which is slow to answer.
    await publish({"type": "reply.delta", "seq": 20, "content": " Old."})
    first = await asyncio.wait_for(layer.receive(worker), 5)
    assert first["type"] == "generation.snapshot" and first["after_seq"] == 13
    # Meanwhile the row (the continuation's) answers the sync when no task does (2 s)...
    await sync_to_async(_move_the_row)(reply.pk, 21, moved + " Row.", worker)
    from_row = await socket.until_type("reply.snapshot", timeout=10)  # the 2 s timer, then a read
    assert from_row["seq"] == 21
    # ...and another gap starts another sync.
    await publish({"type": "reply.delta", "seq": 23, "content": " Gap."})
    second = await asyncio.wait_for(layer.receive(worker), 5)
    assert second["type"] == "generation.snapshot" and second["after_seq"] == 21

    def answer(request: dict[str, Any], seq: int, content: str) -> dict[str, Any]:
        frame = {
            "type": "reply.snapshot",
            "reply_id": reply_id,
            "seq": seq,
            "status": "streaming",
            "mode": "full",
            "content": content,
            "reasoning": "",
            "tool_calls": [],
            "logprobs": [],
        }
        if "sync" in request:
            frame["sync"] = request["sync"]
        return frame

    # The answer to the first sync comes now, late, with the reply as it was then.
    await layer.send(socket_channel(service, group), answer(first, 15, kept + " Stale."))
    await layer.send(socket_channel(service, group), answer(second, 23, moved + " Now."))
    latest = await socket.until_type("reply.snapshot", timeout=5)
    assert (latest["seq"], latest["content"]) == (23, moved + " Now."), latest["seq"]
    await asyncio.sleep(2.5)  # the second sync's timer has passed: nothing more
    while not socket.communicator.output_queue.empty():
        await socket.receive()
    assert not socket.of_type("reply.failed")  # the stale end was dropped
    snapshots = [f["seq"] for f in socket.of_type("reply.snapshot")]
    assert snapshots == [12, 21, 23], snapshots

    # Frames name their task's call: the older call's delta whose sequence number happens to
    # follow the continuation's is dropped, not shown as the continuation's text.
    await publish({"type": "reply.delta", "seq": 24, "content": " New A.", CALL: 2})
    await publish({"type": "reply.delta", "seq": 25, "content": " Old.", CALL: 1})
    await publish({"type": "reply.delta", "seq": 25, "content": " New B.", CALL: 2})
    last = await socket.until(lambda f: f["type"] == "reply.delta" and f["seq"] == 25)
    assert last["content"] == " New B." and CALL not in last
    await socket.close()


def socket_channel(service: Any, group: str) -> str:
    [consumer] = service.rooms[group].sockets
    return str(consumer.channel_name)
