"""A reply reaped while its task lives (its worker cut off from PostgreSQL) is continued on
another worker while word of it cannot reach the old task (Redis away: ``generation.superseded``
is never sent). The old task notices by itself: its next checkpoint, refused because the row is
no longer its own (another worker's channel, a newer call), makes it give way — it stops,
publishes nothing more, is charged what it used (``cancelled``) and writes nothing on the row.

Before, it streamed on unseen, its writes refused, and was charged its whole answer.

One process here: the continuation is the action another worker would run (its channel a
worker's that never hears from this one), so nothing reaches the old task but its own
checkpoints' answers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import actions
from conversations.models import Conversation, Message, UsageRecord, User
from tests.pgproxy import PgProxy
from tests.reaping import ANSWER, no_heartbeat, proxy, reaped_while_cut_off, streaming_reply, until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(90),
    pytest.mark.filterwarnings("ignore:Overriding setting DATABASES"),
]

ELSEWHERE = "specific.elsewhere!worker"  # another worker's generation channel

__all__ = ["no_heartbeat", "proxy"]  # fixtures, used by name


async def test_a_task_whose_reply_was_continued_elsewhere_gives_way_at_its_next_checkpoint(
    no_heartbeat: None,
    alice: User,
    alice_conversation: Conversation,
    slow_simulator: str,
    proxy: PgProxy,
    generation_service: Any,
) -> None:
    socket, reply_id = await streaming_reply(alice, alice_conversation)
    try:
        kept = await reaped_while_cut_off(proxy, reply_id)
        # The user continues it on another worker, which could not tell this one.
        await sync_to_async(actions.continue_reply)(
            alice, alice_conversation.id, reply_id=reply_id, channel=ELSEWHERE
        )
    finally:
        await asyncio.to_thread(proxy.restore)
    task = generation_service.tasks[kept.pk]

    # Its next checkpoint (about a second on) is refused, and it gives way: its call, which
    # the reaper had settled from the text last checkpointed, is settled again to what it used.
    first = await until(
        lambda: UsageRecord.objects.filter(message_id=reply_id, outcome="cancelled").first(), 8
    )
    assert task.superseded and first.state == UsageRecord.State.SETTLED
    assert 0 < first.completion_tokens < len(ANSWER.split())
    await asyncio.wait_for(asyncio.shield(task.task), 5)
    assert kept.pk not in generation_service.tasks

    # The row is the continuation's: nothing of the old task landed on it.
    reply = await Message.objects.aget(pk=reply_id)
    assert reply.status == Message.Status.PENDING and reply.generation_channel == ELSEWHERE
    assert (reply.content, reply.seq) == (kept.content, kept.seq)
    # And the socket was told nothing of the old task's end.
    await asyncio.sleep(0.5)
    while not socket.communicator.output_queue.empty():
        await socket.receive()
    assert not [f for f in socket.frames if f["type"] in ("reply.completed", "reply.failed")]
    await socket.close()


async def test_a_task_that_gave_way_answers_no_snapshot_of_the_reply(
    no_heartbeat: None,
    alice: User,
    alice_conversation: Conversation,
    slow_simulator: str,
    proxy: PgProxy,
    generation_service: Any,
) -> None:
    """Between giving way and ending (its call's settlement), the old task is still this
    worker's: a resync asked of it, from a tab here or from another worker, is not answered
    with the older call's text. A tab here asks the worker of the newer call; another worker
    is told the reply is gone (it reads the row)."""
    socket, reply_id = await streaming_reply(alice, alice_conversation)
    try:
        await reaped_while_cut_off(proxy, reply_id)
        await sync_to_async(actions.continue_reply)(
            alice, alice_conversation.id, reply_id=reply_id, channel=ELSEWHERE
        )
    finally:
        await asyncio.to_thread(proxy.restore)
    reply = await Message.objects.aget(pk=reply_id)
    task = generation_service.tasks[reply.pk]
    layer = generation_service.layer
    asking = await layer.new_channel()

    task.give_way()  # word of the continuation, as ``generation.superseded`` brings it
    assert await generation_service.request_snapshot(reply, 0, asking)
    await generation_service._answer(
        {"type": "generation.snapshot", "reply_id": reply_id, "reply_channel": asking}
    )
    assert generation_service.tasks.get(reply.pk) is task  # still there: it has not ended
    answers = [await asyncio.wait_for(layer.receive(asking), 2)]
    with pytest.raises(asyncio.TimeoutError):
        answers.append(await asyncio.wait_for(layer.receive(asking), 0.5))
    assert [a["type"] for a in answers] == ["reply.gone"]
    asked_elsewhere = await asyncio.wait_for(layer.receive(ELSEWHERE), 2)
    assert asked_elsewhere["type"] == "generation.snapshot"
    await asyncio.wait_for(asyncio.shield(task.task), 5)
    await socket.close()
