"""A reply reaped while its task lived (its worker cut off from PostgreSQL for longer than
``GENERATION_STALE_SECONDS``) has its call settled by the reaper, which gives the user's stream
slot back. Once the task's next checkpoint takes the row back, the reply runs on, and it holds
its call again: ``reserved``, its slot taken again (``usage_take_back``, migration 0022). So a
user limited to one reply at once cannot start a second one beside it, and when it ends the
slot comes back once: the user's count of running replies ends at 0, never below.

Before, the slot stayed given back while the reply ran on: the user could start one more reply
than the limit allows, for as long as it ran."""

from __future__ import annotations

import asyncio

import pytest

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
    no_heartbeat,
    proxy,
    reaped_while_cut_off,
    streaming_reply,
    taken_back,
    until,
)
from tests.support import open_socket

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore:Overriding setting DATABASES"),
]

__all__ = ["no_heartbeat", "proxy"]  # fixtures, used by name


async def _streams(user: User) -> int:
    return (await UsageAccount.objects.aget(user_id=user.pk)).streams


async def test_a_taken_back_reply_holds_its_stream_slot_until_it_ends(
    no_heartbeat: None,
    alice: User,
    alice_conversation: Conversation,
    chat_model: ModelConfig,
    slow_simulator: str,
    proxy: PgProxy,
) -> None:
    await UserLimits.objects.acreate(user=alice, concurrent_streams=1)
    other = await Conversation.objects.acreate(owner=alice, model=chat_model, title="Other")
    socket, reply_id = await streaming_reply(alice, alice_conversation)
    assert await _streams(alice) == 1

    reaped = await reaped_while_cut_off(proxy, reply_id)
    assert await _streams(alice) == 0  # the reaper gave the slot back

    await asyncio.to_thread(proxy.restore)
    await until(lambda: taken_back(reply_id, len(reaped.content)), timeout=8)
    # The reply runs on, so a second one is refused: one at once.
    beside = await open_socket(alice, other)
    await beside.send({"type": "message.send", "client_id": "c2", "content": "Hello"})
    refused = await beside.until(lambda f: f["type"] in ("error", "reply.started"))
    await beside.close()
    assert refused["code"] == "concurrent_streams_limit", refused
    assert not await Message.objects.filter(conversation=other).aexists()
    assert await _streams(alice) == 1
    record = await UsageRecord.objects.aget(message_id=reply_id)
    assert record.state == UsageRecord.State.RESERVED and record.outcome == ""
    # The worst case it was admitted with (migration 0025), not only what the reaper charged.
    assert record.reserved_tokens == record.worst_case_tokens > record.total_tokens

    completed = await socket.until(
        lambda f: f["type"] == "reply.completed" and f["reply_id"] == reply_id, timeout=40
    )
    await socket.close()
    record = await UsageRecord.objects.aget(pk=record.pk)
    assert record.state == UsageRecord.State.SETTLED and record.outcome == "complete"
    assert record.completion_tokens == completed["usage"]["completion_tokens"]
    account = await UsageAccount.objects.aget(user_id=alice.pk)
    assert (account.day_used, account.month_used) == (record.total_tokens,) * 2
    assert account.streams == 0
