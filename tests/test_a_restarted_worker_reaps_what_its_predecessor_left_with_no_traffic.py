"""A worker started after a crash (its predecessor killed mid-stream) marks the replies left
streaming interrupted and gives back their reservations and stream slots by itself, within a
heartbeat interval or so of starting, with no request nor socket reaching it.

Before, its generation service (heartbeat, reaper) started with its first connection, and
its first pass only checked the database: a reply of a crashed worker stayed ``streaming``,
holding its call's worst case and its stream slot, until someone used the site, then two
heartbeat intervals more."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, Message, UsageAccount, UsageRecord, User
from simulator.testing import running_simulator
from tests.servers import daphne_worker
from tests.support import SIM_KEY
from tests.test_reaper import orphan_reply

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

HEARTBEAT_SECONDS = 4.0


async def test_a_fresh_worker_reaps_a_dead_workers_reply_unasked(
    alice: User, alice_conversation: Conversation, chat_model: Any
) -> None:
    reply = await sync_to_async(orphan_reply)(alice, alice_conversation, heartbeat_age=120)
    assert (await UsageAccount.objects.aget(user=alice)).streams == 1
    with (
        running_simulator(api_key=SIM_KEY) as upstream,
        # Ready once it accepts a connection: nothing is sent to it.
        daphne_worker(
            upstream,
            SIM_KEY,
            ready_path=None,
            GENERATION_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS),
        ),
    ):
        listening = time.monotonic()
        while True:
            await reply.arefresh_from_db()
            if reply.status != Message.Status.STREAMING:
                break
            # Its first pass at start checks the database, the next one reaps.
            assert time.monotonic() - listening < HEARTBEAT_SECONDS * 1.75, "never reaped"
            await asyncio.sleep(0.2)

    assert (reply.status, reply.error_code) == (Message.Status.INTERRUPTED, "worker_lost")
    assert reply.content == "The first half of an answer"
    record = await UsageRecord.objects.aget(message=reply)
    assert record.state == UsageRecord.State.SETTLED and record.reserved_tokens == 0
    assert (await UsageAccount.objects.aget(user=alice)).streams == 0
