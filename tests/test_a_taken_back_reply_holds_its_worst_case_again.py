"""A reply reaped while its task lived (its worker cut off from PostgreSQL for longer than
``GENERATION_STALE_SECONDS``) has its call settled by the reaper for what it had checkpointed,
which gives the rest of the call's worst case back to the user's day and month; other calls
may be admitted into that room. When the task's next checkpoint takes the reply back, its call
is reserved again for the worst case it was admitted with (its padded prompt estimate and
``max_tokens``), against what is left of the day and the month — if that fits
(``usage_take_back``, migration 0025). If it does not, the reply stays ``interrupted`` as the
reaper left it and the task gives way at once: nothing more is spent. What it streamed through
the outage was billed all the same, and its call is charged it (the estimate of the whole text
the task received, not the reaper's of the text last checkpointed).

Before, the take-back held the call again only for what the reaper had charged: the reply ran
on to its end, and its settlement charged past the day's limit. Then, a take-back that did not
fit left the call charged the reaper's estimate: what was streamed meanwhile went unrecorded."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from asgiref.sync import sync_to_async

from conversations import quota
from conversations.generation import GenerationService
from conversations.models import (
    Conversation,
    Message,
    ModelConfig,
    UsageAccount,
    UsageRecord,
    User,
    UserLimits,
)
from tests.pgproxy import PgProxy
from tests.reaping import (
    ANSWER,
    no_heartbeat,
    proxy,
    reaped_while_cut_off,
    streaming_reply,
    taken_back,
    until,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore:Overriding setting DATABASES"),
]

__all__ = ["no_heartbeat", "proxy"]  # fixtures, used by name


async def _day_used(user: User) -> int:
    return (await UsageAccount.objects.aget(user_id=user.pk)).day_used


@asynccontextmanager
async def _most_charged(user: User) -> AsyncIterator[list[int]]:
    """The most the user's day counter held while the block ran (sampled every 20 ms)."""
    most = [await _day_used(user)]

    async def sample() -> None:
        while True:
            most[0] = max(most[0], await _day_used(user))
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    try:
        yield most
    finally:
        sampler.cancel()
        most[0] = max(most[0], await _day_used(user))


async def test_a_take_back_that_no_longer_fits_leaves_the_reply_as_the_reaper_left_it(
    no_heartbeat: None,
    alice: User,
    alice_conversation: Conversation,
    chat_model: ModelConfig,
    slow_simulator: str,
    proxy: PgProxy,
    generation_service: GenerationService,
) -> None:
    socket, reply_id = await streaming_reply(alice, alice_conversation)
    task = generation_service.tasks[uuid.UUID(reply_id)]
    assert task.task is not None
    record = await UsageRecord.objects.aget(message_id=reply_id)
    worst_case = record.reserved_tokens
    # Alice's day holds exactly this reply's worst case.
    await UserLimits.objects.acreate(user=alice, tokens_per_day=worst_case)

    reaped = await reaped_while_cut_off(proxy, reply_id)
    charged = (await UsageRecord.objects.aget(pk=record.pk)).total_tokens
    assert await _day_used(alice) == charged < worst_case
    # An API call of hers is admitted into the room the reaper gave back, and runs on.
    room = worst_case - charged
    other = await sync_to_async(quota.admit)(
        alice,
        chat_model,
        purpose=UsageRecord.Purpose.API,
        # (padded, it reserves all but a token or three of the room)
        prompt_tokens=int((room - quota.PROMPT_SLACK - 1) / quota.PROMPT_PADDING) - 1,
        max_tokens=1,
    )
    assert room - 4 <= other.reserved_tokens <= room

    async with _most_charged(alice) as most:
        await asyncio.to_thread(proxy.restore)
        # The task's next checkpoint cannot hold the call again: it gives way, and this
        # worker's socket, which waited on it, is told the reply ended as the reaper said.
        end = await socket.until(
            lambda f: (
                f.get("reply_id") == reply_id and f["type"] in ("reply.completed", "reply.failed")
            ),
            timeout=30,
        )
        assert end["type"] == "reply.failed", end  # not run on to its end
        assert (end["code"], end["seq"]) == ("worker_lost", reaped.seq)
        await asyncio.wait_for(asyncio.shield(task.task), 5)  # ended
        await asyncio.sleep(2.0)  # any later checkpoint, final write or charge would have landed
    await socket.close()

    reply = await Message.objects.aget(pk=reply_id)
    assert (reply.status, reply.error_code) == ("interrupted", "worker_lost")
    assert (reply.content, reply.seq) == (reaped.content, reaped.seq)
    # The call is charged all the task received through the outage (billed upstream), not
    # only the text the reaper found checkpointed; it stays interrupted, as the reaper left it.
    assert len(task.content) > len(reaped.content)
    record = await UsageRecord.objects.aget(pk=record.pk)
    assert (record.state, record.outcome) == ("settled", "interrupted")
    assert record.estimated and record.completion_tokens == quota.estimate_tokens(task.content)
    assert record.total_tokens == record.prompt_tokens + record.completion_tokens > charged
    account = await UsageAccount.objects.aget(user_id=alice.pk)
    assert account.day_used == account.month_used == record.total_tokens + other.reserved_tokens
    # Spent, it is charged even past the day's limit; but its worst case was never held again.
    assert most[0] == account.day_used
    assert account.streams == 1  # the API call's
    # The end the socket was told says what the call was charged, its settlement included.
    assert end["charged"]["completion_tokens"] == record.completion_tokens
    assert end["charged"]["estimated"] is True


async def test_a_take_back_that_fits_holds_the_worst_case_until_the_reply_ends(
    no_heartbeat: None,
    alice: User,
    alice_conversation: Conversation,
    slow_simulator: str,
    proxy: PgProxy,
) -> None:
    socket, reply_id = await streaming_reply(alice, alice_conversation)
    record = await UsageRecord.objects.aget(message_id=reply_id)
    worst_case = record.reserved_tokens
    await UserLimits.objects.acreate(user=alice, tokens_per_day=worst_case)

    reaped = await reaped_while_cut_off(proxy, reply_id)
    async with _most_charged(alice) as most:
        await asyncio.to_thread(proxy.restore)
        await until(lambda: taken_back(reply_id, len(reaped.content)), timeout=8)
        held = await UsageRecord.objects.aget(pk=record.pk)
        assert (held.state, held.reserved_tokens) == ("reserved", worst_case)
        assert await _day_used(alice) == worst_case  # nothing else fits beside it now

        completed = await socket.until(
            lambda f: f["type"] == "reply.completed" and f["reply_id"] == reply_id, timeout=40
        )
    await socket.close()

    assert most[0] <= worst_case
    reply = await Message.objects.aget(pk=reply_id)
    assert reply.status == Message.Status.COMPLETE and reply.content == ANSWER
    record = await UsageRecord.objects.aget(pk=record.pk)
    assert (record.state, record.outcome, record.reserved_tokens) == ("settled", "complete", 0)
    assert record.completion_tokens == completed["usage"]["completion_tokens"]
    assert record.total_tokens == completed["usage"]["total_tokens"]
    account = await UsageAccount.objects.aget(user_id=alice.pk)
    assert account.day_used == account.month_used == record.total_tokens
    assert account.streams == 0
