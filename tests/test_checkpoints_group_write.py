"""The process's checkpoints are written together: the states handed in while a write runs go
out in one statement; a reply's older state never overwrites a newer one, and nothing touches
a reply once it is final."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from conversations import actions
from conversations.models import Conversation, Message, User

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def replies(user: User, conversation: Conversation, count: int, channel: str) -> list[Message]:
    return [
        Message.objects.create(
            conversation=conversation,
            role="assistant",
            status="streaming",
            seq=1,
            generation_channel=channel,
        )
        for _ in range(count)
    ]


def transactions_of(ids: list[Any]) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xmin::text FROM conversations_message WHERE id = ANY(%s)", [list(ids)]
        )
        return {row[0] for row in cursor.fetchall()}


async def settled(service: Any) -> None:
    while service.checkpoints.writing is not None:
        await asyncio.sleep(0.01)


async def test_states_handed_in_together_are_written_by_one_statement(
    alice: User, alice_conversation: Conversation, generation_service: Any
) -> None:
    rows = await sync_to_async(replies)(alice, alice_conversation, 12, generation_service.channel)
    for i, row in enumerate(rows):
        generation_service.checkpoints.add(
            actions.checkpoint(row.pk, content=f"text {i}", reasoning="", tool_calls=None, seq=3)
        )
    await settled(generation_service)
    assert len(await sync_to_async(transactions_of)([r.pk for r in rows])) == 1
    for i, row in enumerate(rows):
        await row.arefresh_from_db()
        assert (row.content, row.seq, row.heartbeat_at is not None) == (f"text {i}", 3, True)


async def test_an_older_state_a_final_reply_or_another_process_s_is_never_overwritten(
    alice: User, alice_conversation: Conversation, generation_service: Any
) -> None:
    """Another process's: the reaper gave up on this one's task and the reply was continued
    elsewhere; the old task must not write over the new run."""
    newer, final, moved = await sync_to_async(replies)(
        alice, alice_conversation, 3, generation_service.channel
    )
    await Message.objects.filter(pk=moved.pk).aupdate(
        content="the new run's", generation_channel="generation.other!x"
    )
    await Message.objects.filter(pk=newer.pk).aupdate(content="newer", seq=9)
    await Message.objects.filter(pk=final.pk).aupdate(content="final", status="complete", seq=4)
    for row in (newer, final, moved):
        generation_service.checkpoints.add(
            actions.checkpoint(row.pk, content="stale", reasoning="", tool_calls=None, seq=5)
        )
    await settled(generation_service)
    await newer.arefresh_from_db()
    await final.arefresh_from_db()
    assert (newer.content, newer.seq) == ("newer", 9)
    assert (final.content, final.status) == ("final", "complete")
    await moved.arefresh_from_db()
    assert moved.content == "the new run's"


async def test_a_state_that_cannot_be_written_does_not_hold_back_the_others(
    alice: User, alice_conversation: Conversation, generation_service: Any
) -> None:
    good, bad = await sync_to_async(replies)(
        alice, alice_conversation, 2, generation_service.channel
    )
    generation_service.checkpoints.add(
        actions.checkpoint(good.pk, content="fine", reasoning="", tool_calls=None, seq=2)
    )
    generation_service.checkpoints.add(  # (the task drops NUL; this one got past it)
        actions.checkpoint(bad.pk, content="nul\x00", reasoning="", tool_calls=None, seq=2)
    )
    await settled(generation_service)
    await good.arefresh_from_db()
    await bad.arefresh_from_db()
    assert (good.content, bad.content) == ("fine", "")
