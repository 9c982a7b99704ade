"""A reply reaped while its task lived (its worker cut off from PostgreSQL for longer than
``GENERATION_STALE_SECONDS``) shows ``interrupted``, and its user may send a message under it.
What follows it is then written from the text the reaper kept: the old task no longer takes the
row back (``actions._ANSWERED``), which would change that history under it (as a Continue of a
reply with messages under it is refused). Its next checkpoint, once the database answers it,
finds the row gone on from, and the task gives way: charged what it used (``cancelled``), the
row left as the reaper kept it. A tab on the task's own worker, which waited on the living task
rather than act on the reaper's end, is then handed that end, and the text the reaper kept.

Before, the old task's checkpoint took the row back: the reply streamed on and completed above
the message sent under it, which had been answered from its shorter text."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conversations import quota
from conversations.generation import group_name, reaped_end
from conversations.models import Conversation, Message, UsageAccount, UsageRecord, User
from tests.pgproxy import PgProxy
from tests.reaping import (
    ANSWER,
    no_heartbeat,
    proxy,
    reaped_while_cut_off,
    streaming_reply,
    until,
)
from tests.support import open_socket, reply_text

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore:Overriding setting DATABASES"),
]

__all__ = ["no_heartbeat", "proxy"]  # fixtures, used by name


async def test_a_reaped_reply_with_a_message_under_it_is_left_as_it_was_kept(
    no_heartbeat: None,
    alice: User,
    alice_conversation: Conversation,
    slow_simulator: str,
    proxy: PgProxy,
    generation_service: Any,
) -> None:
    socket, reply_id = await streaming_reply(alice, alice_conversation)
    record = await UsageRecord.objects.aget(message_id=reply_id)
    reaped = await reaped_while_cut_off(proxy, reply_id)
    # The reaper's end, as another worker's reaper publishes it: this worker's socket waits on
    # the living task instead (which may yet take the reply back).
    await generation_service.publish(
        group_name(alice_conversation.id), reaped_end(reaped.id, reaped.seq)
    )

    # Sent under the reply as it is shown (interrupted), from another tab.
    other_tab = await open_socket(alice, alice_conversation)
    await other_tab.send(
        {
            "type": "message.send",
            "client_id": "c2",
            "content": "[[sim: say=Noted.]]",
            "parent_id": reply_id,
        }
    )
    created = await other_tab.until(
        lambda f: f["type"] == "message.created" and f["message"]["role"] == "user"
    )
    assert created["message"]["parent_id"] == reply_id
    await asyncio.to_thread(proxy.restore)

    # The old task gives way at its next checkpoint: its call charged what it used.
    settled = await until(
        lambda: UsageRecord.objects.filter(
            pk=record.pk, outcome__in=("cancelled", "complete")
        ).first(),
        timeout=30,
    )
    # The first tab, on the task's worker, is told the reply ended as the reaper said, and
    # shows the text it kept (not what the task streamed after it).
    end = await socket.until(
        lambda f: (
            f.get("reply_id") == reply_id and f["type"] in ("reply.completed", "reply.failed")
        ),
        timeout=10,
    )
    assert (end["type"], end["code"], end["seq"]) == ("reply.failed", "worker_lost", reaped.seq)
    assert reply_text(socket.frames, reply_id) == reaped.content
    await asyncio.sleep(2.0)  # any later checkpoint or final write of it would have landed
    await socket.close()
    await other_tab.close()
    assert settled.outcome == "cancelled"
    assert settled.completion_tokens < quota.estimate_tokens(ANSWER)
    reply = await Message.objects.aget(pk=reply_id)
    assert (reply.status, reply.error_code) == ("interrupted", "worker_lost")
    assert (reply.content, reply.seq) == (reaped.content, reaped.seq)
    account = await UsageAccount.objects.aget(user_id=alice.pk)
    assert account.streams == 0
