"""A reply reaped while its task lived (its worker cut off from PostgreSQL for longer than
``GENERATION_STALE_SECONDS``) is stopped with its conversation, like one still being written
(``generation.stop_replies``, ``actions.reaped_while_its_task_may_live``): deleted, by its owner
in the chat or for good in the admin, the reply's task stops and its call is charged what it
used (``cancelled``).

Before, the delete skipped the reaped row: its task streamed on unseen — into a conversation
in the bin, whose row its next checkpoint took back, or into none — and the call was charged
its whole answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import quota, ui_actions
from conversations.models import Conversation, UsageAccount, UsageRecord, User
from tests.pgproxy import PgProxy
from tests.reaping import (
    ANSWER,
    no_heartbeat,
    proxy,
    reaped_while_cut_off,
    streaming_reply,
    until,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore:Overriding setting DATABASES"),
]

__all__ = ["no_heartbeat", "proxy"]  # fixtures, used by name


def _hard_delete(conversation: Conversation) -> None:
    Conversation.objects.get(pk=conversation.pk).delete()


def _soft_delete(conversation: Conversation) -> None:
    ui_actions.delete_conversation(Conversation.objects.get(pk=conversation.pk))


@pytest.mark.parametrize("delete", [_hard_delete, _soft_delete], ids=["for good", "to the bin"])
async def test_deleting_its_conversation_stops_a_reaped_replys_living_task(
    delete: Any,
    no_heartbeat: None,
    alice: User,
    alice_conversation: Conversation,
    slow_simulator: str,
    proxy: PgProxy,
) -> None:
    socket, reply_id = await streaming_reply(alice, alice_conversation)
    record = await UsageRecord.objects.aget(message_id=reply_id)
    await reaped_while_cut_off(proxy, reply_id)

    await sync_to_async(delete)(alice_conversation)
    await asyncio.sleep(1.0)  # the task stops meanwhile
    await asyncio.to_thread(proxy.restore)  # its settlement lands once the database answers
    await socket.close()
    settled = await until(
        lambda: UsageRecord.objects.filter(
            pk=record.pk, outcome__in=("cancelled", "complete")
        ).first(),
        timeout=40,
    )
    assert settled.outcome == "cancelled"
    assert settled.completion_tokens < quota.estimate_tokens(ANSWER) / 2
    account = await UsageAccount.objects.aget(user_id=alice.pk)
    assert (account.day_used, account.month_used) == (settled.total_tokens,) * 2
    assert account.streams == 0
