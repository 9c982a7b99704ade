"""A reply whose process died is marked interrupted, its text kept, its reservation released."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from conversations import actions, quota
from conversations.generation import group_name
from conversations.models import Conversation, Message, UsageAccount, UsageRecord, User
from tests.support import open_socket, reply_text

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def orphan_reply(user: User, conversation: Conversation, heartbeat_age: float) -> Message:
    """What a process killed mid-stream leaves behind: a streaming row and a reservation."""
    with transaction.atomic():
        turn = actions.send_message(
            user, conversation.id, client_id="c1", content="Hello", channel="generation.dead!x"
        )
        Message.objects.filter(pk=turn.reply.pk).update(
            status=Message.Status.STREAMING,
            content="The first half of an answer",
            seq=7,
            heartbeat_at=timezone.now() - timedelta(seconds=heartbeat_age),
        )
    return turn.reply


async def test_the_reaper_interrupts_replies_whose_heartbeat_stopped(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    reply = await sync_to_async(orphan_reply)(alice, alice_conversation, heartbeat_age=120)
    socket = await open_socket(alice, alice_conversation)
    assert await generation_service.reap() == 1
    failed = await socket.until_type("reply.failed")
    assert failed["code"] == "worker_lost" and failed["status"] == "interrupted"
    await socket.close()
    await reply.arefresh_from_db()
    assert reply.status == Message.Status.INTERRUPTED
    assert reply.content == "The first half of an answer"
    record = await UsageRecord.objects.aget(message=reply)
    assert record.state == UsageRecord.State.SETTLED and record.reserved_tokens == 0
    assert record.estimated and record.completion_tokens > 0


async def test_the_reaper_leaves_live_replies_alone(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    reply = await sync_to_async(orphan_reply)(alice, alice_conversation, heartbeat_age=5)
    assert await generation_service.reap() == 0
    await reply.arefresh_from_db()
    assert reply.status == Message.Status.STREAMING


async def test_an_interrupted_reply_can_be_continued(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    reply = await sync_to_async(orphan_reply)(alice, alice_conversation, heartbeat_age=120)
    await generation_service.reap()
    socket = await open_socket(alice, alice_conversation)
    await socket.send({"type": "reply.continue", "reply_id": str(reply.pk)})
    end = await socket.until_reply_ends()
    await socket.close()
    assert end["type"] == "reply.completed", end
    await reply.arefresh_from_db()
    assert reply.status == Message.Status.COMPLETE
    assert reply.content.startswith("The first half of an answer")
    assert len(reply.content) > len("The first half of an answer")
    records = [r async for r in UsageRecord.objects.filter(message=reply).order_by("created_at")]
    assert [r.outcome for r in records] == ["interrupted", "complete"]


@pytest.mark.parametrize("stopped", ["before its task begins", "while it reads the reply"])
async def test_a_continuation_stopped_at_once_ends_cancelled_not_pending(
    alice: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
    stopped: str,
) -> None:
    """Stop pressed right after Continue: the task, which reads the reply from the database
    first, must still finalize it (a reply left pending kept its reservation, its stream slot
    and a task heartbeating it forever)."""
    reply = await sync_to_async(orphan_reply)(alice, alice_conversation, heartbeat_age=120)
    await generation_service.reap()
    await sync_to_async(actions.continue_reply)(
        alice, alice_conversation.id, reply_id=str(reply.pk), channel=generation_service.channel
    )
    task = generation_service.start(reply.pk, alice_conversation.id)
    if stopped == "while it reads the reply":
        await asyncio.sleep(0)  # the task begins and waits on its ORM thread
    task.stop("cancelled")
    await asyncio.wait_for(task.task, 10)
    await reply.arefresh_from_db()
    assert reply.status == Message.Status.CANCELLED
    assert reply.content == "The first half of an answer"
    assert reply.pk not in generation_service.tasks
    records = [r async for r in UsageRecord.objects.filter(message=reply).order_by("created_at")]
    assert [(r.outcome, r.state) for r in records] == [
        ("interrupted", "settled"),
        ("cancelled", "settled"),
    ]
    assert records[1].total_tokens == 0  # never sent upstream: nothing to charge


async def test_a_task_given_up_on_does_not_write_over_the_run_that_replaced_it(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    """The reaper took this task's reply for dead and it was continued by another process:
    when the old task ends, its final write must not land on the new run's row."""
    turn = await sync_to_async(actions.send_message)(
        alice,
        alice_conversation.id,
        client_id="c1",
        content="Hello",
        channel=generation_service.channel,
    )
    task = generation_service.start(turn.reply.pk, alice_conversation.id)
    await Message.objects.filter(pk=turn.reply.pk).aupdate(
        generation_channel="generation.elsewhere!x", content="the new run's text"
    )
    task.stop("cancelled")
    await asyncio.wait_for(task.task, 10)
    reply = await Message.objects.aget(pk=turn.reply.pk)
    assert (reply.status, reply.content) == ("pending", "the new run's text")
    assert turn.reply.pk not in generation_service.tasks


async def test_the_reaper_leaves_its_own_process_s_running_tasks_alone(
    alice: User, alice_conversation: Conversation, slow_simulator: str, generation_service: Any
) -> None:
    """A row whose heartbeat looks stale (the database was away) but whose task runs here."""
    turn = await sync_to_async(actions.send_message)(
        alice,
        alice_conversation.id,
        client_id="c1",
        content="[[sim: say=" + "word " * 60 + "]]",
        channel=generation_service.channel,
    )
    task = generation_service.start(turn.reply.pk, alice_conversation.id)
    await Message.objects.filter(pk=turn.reply.pk).aupdate(
        heartbeat_at=timezone.now() - timedelta(seconds=600)
    )
    assert await generation_service.reap(stale_after=60) == 0
    task.stop("cancelled")
    await asyncio.wait_for(task.task, 10)
    reply = await Message.objects.aget(pk=turn.reply.pk)
    assert reply.status == Message.Status.CANCELLED  # finalized by its task, not reaped


def test_a_continuation_whose_process_died_is_charged_only_for_its_own_text(
    alice: User, alice_conversation: Conversation
) -> None:
    """The text a continued reply already held was billed by the calls that wrote it."""
    reply = orphan_reply(alice, alice_conversation, heartbeat_age=120)
    Message.objects.filter(pk=reply.pk).update(content="word " * 2000)  # ~2000 tokens, billed
    actions.reap_stale_replies(60)
    actions.continue_reply(alice, alice_conversation.id, reply_id=str(reply.pk), channel="x!y")
    # Its process dies after writing a few more words.
    Message.objects.filter(pk=reply.pk).update(
        status=Message.Status.STREAMING,
        content="word " * 2000 + "and then some",
        heartbeat_at=timezone.now() - timedelta(seconds=120),
    )
    assert actions.reap_stale_replies(60)
    first, continuation = UsageRecord.objects.filter(message=reply).order_by("created_at")
    assert continuation.outcome == "interrupted" and continuation.estimated
    assert continuation.completion_tokens == quota.estimate_tokens("and then some")
    assert first.completion_tokens > 1000  # the first call did write the 2000 words


async def test_the_reaper_releases_api_calls_older_than_any_call_may_run(
    alice: User, chat_model: Any, generation_service: Any, settings: Any
) -> None:
    """A process killed mid-API-call leaves a reservation no heartbeat covers."""

    def orphan_call(age: float) -> UsageRecord:
        record = quota.admit(alice, chat_model, purpose="api", prompt_tokens=50, max_tokens=500)
        UsageRecord.objects.filter(pk=record.pk).update(
            created_at=timezone.now() - timedelta(seconds=age)
        )
        return record

    settings.UPSTREAM_DEADLINE = 600
    old = await sync_to_async(orphan_call)(600 + 120)
    recent = await sync_to_async(orphan_call)(300)  # may still be running somewhere
    await generation_service.reap(stale_after=60)
    old_row = await UsageRecord.objects.aget(pk=old.pk)
    assert (old_row.state, old_row.outcome, old_row.reserved_tokens) == (
        "settled",
        "interrupted",
        0,
    )
    assert old_row.estimated and old_row.total_tokens == 50
    assert (await UsageRecord.objects.aget(pk=recent.pk)).state == "reserved"
    account = await UsageAccount.objects.aget(user=alice)
    assert account.streams == 1  # the recent call's slot only
    assert account.day_used == 50 + recent.reserved_tokens


async def test_a_watcher_sent_text_that_died_with_its_process_gets_the_stored_reply(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    """The dead process had published deltas 8 and 9 (relayed to a socket on this worker)
    after its last checkpoint (seq 7). Reaped, the watcher is sent the stored reply; continued,
    the reply goes on from seq 7 and the watcher's text is the stored text, without a gap."""
    reply = await sync_to_async(orphan_reply)(alice, alice_conversation, heartbeat_age=120)
    watcher = await open_socket(alice, alice_conversation)
    reply_id = str(reply.pk)
    group = group_name(alice_conversation.id)
    for seq, text in ((8, " Lost A."), (9, " Lost B.")):  # as the dead process published them
        await generation_service.publish(
            group, {"type": "reply.delta", "reply_id": reply_id, "seq": seq, "content": text}
        )
    await watcher.until(lambda f: f["type"] == "reply.delta" and f["seq"] == 9, timeout=10)

    assert await generation_service.reap() == 1
    snapshot = await watcher.until_type("reply.snapshot")
    assert snapshot["mode"] == "full" and snapshot["seq"] == 7
    assert snapshot["content"] == "The first half of an answer"
    assert snapshot["status"] == "interrupted" and snapshot["code"] == "worker_lost"
    failed = await watcher.until_type("reply.failed")
    assert failed["seq"] == 7 and failed["code"] == "worker_lost"
    assert watcher.frames.index(snapshot) < watcher.frames.index(failed)

    await watcher.send({"type": "reply.continue", "reply_id": reply_id})
    end = await watcher.until_reply_ends()
    assert end["type"] == "reply.completed", end
    await reply.arefresh_from_db()
    frames = [f for f in watcher.frames if f.get("reply_id") == reply_id]
    after_reap = frames[frames.index(snapshot) :]
    assert reply_text(after_reap, reply_id) == reply.content
    assert reply.content.startswith("The first half of an answer")
    await watcher.close()
