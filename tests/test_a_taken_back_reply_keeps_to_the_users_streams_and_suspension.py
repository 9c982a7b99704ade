"""A reply reaped while its task lived (its worker cut off from PostgreSQL for longer than
``GENERATION_STALE_SECONDS``) gives its stream slot back with its call. When the task's next
checkpoint would take the reply back, its call takes the slot again only if the user's running
replies leave room for it, and only while the account may send (active, not suspended), as
admission would (``usage_take_back``, migration 0027). If not, the reply stays ``interrupted``
as the reaper left it and its task gives way at once, its call charged what it used.

Before, the take-back retook the slot unconditionally and never looked at the account: a user
limited to one reply at once who started an API call in the slot the reaper gave back ran two;
a user suspended or deactivated during the outage had the reply taken back and run to its end.
Nor did it look at the reply's model (migration 0028): one the admin disabled, or took from the
user's policy, during the outage ran on to its end as well."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest
from asgiref.sync import sync_to_async

from conversations import quota
from conversations.generation import GenerationService, GenerationTask
from conversations.models import (
    Conversation,
    Message,
    ModelConfig,
    Policy,
    UsageAccount,
    UsageRecord,
    User,
    UserLimits,
)
from tests.pgproxy import PgProxy
from tests.reaping import no_heartbeat, proxy, reaped_while_cut_off, streaming_reply

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore:Overriding setting DATABASES"),
]

__all__ = ["no_heartbeat", "proxy"]  # fixtures, used by name


async def _left_to_the_reaper(task: GenerationTask, reaped: Message) -> UsageRecord:
    """Once ``task`` has ended: its reply as the reaper left it, and its call, still
    ``interrupted``, charged all the task received (not only what the reaper found)."""
    assert task.task is not None
    # Given way at once: run to its end, the reply would stream for ~15 s more.
    await asyncio.wait_for(asyncio.shield(task.task), 8)
    reply = await Message.objects.aget(pk=reaped.pk)
    assert (reply.status, reply.error_code) == ("interrupted", "worker_lost")
    assert (reply.content, reply.seq) == (reaped.content, reaped.seq)
    record = await UsageRecord.objects.aget(message_id=reaped.pk)
    assert (record.state, record.outcome) == ("settled", "interrupted")
    assert record.estimated and record.completion_tokens == quota.estimate_tokens(task.content)
    return record


async def test_a_stream_slot_used_meanwhile_is_not_taken_twice(
    no_heartbeat: None,
    alice: User,
    alice_conversation: Conversation,
    chat_model: ModelConfig,
    slow_simulator: str,
    proxy: PgProxy,
    generation_service: GenerationService,
) -> None:
    await UserLimits.objects.acreate(user=alice, concurrent_streams=1)
    socket, reply_id = await streaming_reply(alice, alice_conversation)
    task = generation_service.tasks[uuid.UUID(reply_id)]

    reaped = await reaped_while_cut_off(proxy, reply_id)
    # An API call of hers is admitted in the slot the reaper gave back, and runs on.
    other = await sync_to_async(quota.admit)(
        alice, chat_model, purpose=UsageRecord.Purpose.API, prompt_tokens=10, max_tokens=1
    )
    assert (await UsageAccount.objects.aget(user_id=alice.pk)).streams == 1

    await asyncio.to_thread(proxy.restore)
    end = await socket.until(
        lambda f: (
            f.get("reply_id") == reply_id and f["type"] in ("reply.completed", "reply.failed")
        ),
        timeout=30,
    )
    await socket.close()
    assert end["type"] == "reply.failed", end  # not run on beside the API call
    assert (end["code"], end["seq"]) == ("worker_lost", reaped.seq)

    record = await _left_to_the_reaper(task, reaped)
    account = await UsageAccount.objects.aget(user_id=alice.pk)
    assert account.streams == 1  # the API call's: one at once
    assert account.day_used == record.total_tokens + other.reserved_tokens


async def _suspend(user: User) -> None:
    await UserLimits.objects.acreate(user=user, suspended=True)


async def _deactivate(user: User) -> None:
    user.is_active = False
    await sync_to_async(user.save)(update_fields=["is_active"])


async def _disable_model(user: User) -> None:
    await ModelConfig.objects.filter(enabled=True).aupdate(enabled=False)


async def _take_model_away(user: User) -> None:
    """The user's own policy allows no model (the reply's included)."""
    policy = await Policy.objects.acreate(name="No models", all_models=False)
    await UserLimits.objects.acreate(user=user, policy=policy)


@pytest.mark.parametrize(
    "stop_sending",
    [_suspend, _deactivate, _disable_model, _take_model_away],
    ids=["suspended", "inactive", "model-disabled", "model-not-allowed"],
)
async def test_an_account_or_model_that_may_no_longer_send_is_not_taken_back(
    stop_sending: Callable[[User], Awaitable[None]],
    no_heartbeat: None,
    alice: User,
    alice_conversation: Conversation,
    slow_simulator: str,
    proxy: PgProxy,
    generation_service: GenerationService,
) -> None:
    socket, reply_id = await streaming_reply(alice, alice_conversation)
    task = generation_service.tasks[uuid.UUID(reply_id)]
    try:
        reaped = await reaped_while_cut_off(proxy, reply_id)
        await stop_sending(alice)  # by an admin, during the outage

        await asyncio.to_thread(proxy.restore)
        record = await _left_to_the_reaper(task, reaped)
    finally:
        await socket.close()
    account = await UsageAccount.objects.aget(user_id=alice.pk)
    assert account.streams == 0
    assert account.day_used == account.month_used == record.total_tokens
