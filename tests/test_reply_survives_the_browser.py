"""Closing the tab does not stop the answer; reconnecting resumes it without gaps."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from conversations.models import Conversation, Message, User
from tests.support import open_socket, reply_text

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

ANSWER = " ".join(f"token{i}" for i in range(120))


async def wait_for_status(reply_id: str, statuses: set[str], timeout: float = 30) -> Message:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        reply = await Message.objects.aget(pk=reply_id)
        if reply.status in statuses:
            return reply
        assert asyncio.get_running_loop().time() < deadline, f"still {reply.status}"
        await asyncio.sleep(0.1)


async def test_it_keeps_generating_after_the_browser_leaves(
    alice: User, alice_conversation: Conversation, slow_simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={ANSWER}]]"}
    )
    await socket.until_type("reply.delta")
    reply_id = socket.of_type("message.created")[1]["message"]["id"]
    await socket.close()  # the tab closes mid-stream
    reply = await wait_for_status(reply_id, {"complete"})
    assert reply.content == ANSWER


async def test_reconnecting_at_random_points_resumes_with_continuous_sequence_numbers(
    alice: User, alice_conversation: Conversation, slow_simulator: str, generation_service: Any
) -> None:
    rng = random.Random(4)
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={ANSWER}]]"}
    )
    frames: list[dict[str, Any]] = []
    reply_id = ""
    done = False
    reconnects = 0
    while not done:
        for _ in range(rng.randint(1, 6)):
            frame = await socket.receive(timeout=20)
            if frame["type"] == "message.created" and frame["message"]["role"] == "assistant":
                reply_id = frame["message"]["id"]
            frames.append(frame)
            # The end: a completion frame, or a snapshot of a reply that ended meanwhile.
            if frame["type"] in ("reply.completed", "reply.failed") or (
                frame["type"] == "reply.snapshot" and frame["status"] == "complete"
            ):
                done = True
                break
        if not done:
            held = max(
                [
                    f["seq"]
                    for f in frames
                    if f["type"] in ("reply.delta", "reply.snapshot", "reply.started")
                ],
                default=0,
            )
            await socket.close()
            reconnects += 1
            socket = await open_socket(alice, alice_conversation)
            await socket.send({"type": "reply.sync", "reply_id": reply_id, "after_seq": held})
    await socket.close()
    assert reconnects >= 2
    assert frames[-1]["type"] == "reply.completed" or frames[-1]["status"] == "complete"
    assert reply_text(frames, reply_id) == ANSWER


async def test_a_second_socket_sees_the_same_deltas(
    alice: User, alice_conversation: Conversation, slow_simulator: str, generation_service: Any
) -> None:
    first = await open_socket(alice, alice_conversation)
    second = await open_socket(alice, alice_conversation)
    await first.send(
        {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={ANSWER}]]"}
    )
    end_first = await first.until_reply_ends()
    end_second = await second.until_reply_ends()
    assert end_first == end_second
    assert first.of_type("reply.delta") == second.of_type("reply.delta")
    reply_id = end_first["reply_id"]
    assert reply_text(second.frames, reply_id) == ANSWER
    await first.close()
    await second.close()


async def test_a_late_joiner_gets_a_snapshot_then_the_rest(
    alice: User, alice_conversation: Conversation, slow_simulator: str, generation_service: Any
) -> None:
    first = await open_socket(alice, alice_conversation)
    await first.send(
        {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={ANSWER}]]"}
    )
    for _ in range(5):
        await first.until_type("reply.delta")
    late = await open_socket(alice, alice_conversation)
    [active] = late.frames[0]["active_replies"]
    await late.send({"type": "reply.sync", "reply_id": active["reply_id"], "after_seq": 0})
    snapshot = await late.until_type("reply.snapshot")
    assert snapshot["mode"] == "full" and snapshot["content"]
    await late.until_reply_ends()
    assert reply_text(late.frames, snapshot["reply_id"]) == ANSWER
    await first.close()
    await late.close()


async def test_a_socket_that_missed_the_last_delta_gets_the_snapshot_before_the_end(
    alice: User, alice_conversation: Conversation, generation_service: Any
) -> None:
    # A reply whose last delta went out just before this socket joined its conversation: the
    # row holds the whole text; the socket then hears only the end (seq 7), not delta 7.
    from conversations.generation import group_name

    reply = await Message.objects.acreate(
        conversation=alice_conversation,
        role=Message.Role.ASSISTANT,
        content="The whole answer.",
        status=Message.Status.COMPLETE,
        seq=7,
    )
    socket = await open_socket(alice, alice_conversation)
    await generation_service.publish(
        group_name(alice_conversation.id),
        {"type": "reply.completed", "reply_id": str(reply.pk), "seq": 7, "status": "complete"},
    )
    snapshot = await socket.until_type("reply.snapshot")
    end = await socket.until_type("reply.completed")
    await socket.close()
    assert snapshot["content"] == "The whole answer." and snapshot["seq"] == 7
    assert socket.frames.index(snapshot) < socket.frames.index(end)
    assert reply_text(socket.frames, str(reply.pk)) == "The whole answer."
