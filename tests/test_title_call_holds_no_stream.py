"""The title call that follows a conversation's first reply is the app's own work, not a reply
the user runs: it is admitted, reserved and settled on the ledger like any call, but it does
not take one of the user's "replies running at once", so the next message is not refused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conversations.models import (
    Conversation,
    ModelConfig,
    UsageAccount,
    UsageRecord,
    User,
    UserLimits,
)
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def title_call_admitted(timeout: float = 10) -> UsageRecord:
    """The title call's ledger row, once the call that follows the reply has been admitted."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        title = await UsageRecord.objects.filter(purpose=UsageRecord.Purpose.TITLE).afirst()
        if title is not None or asyncio.get_running_loop().time() > deadline:
            assert title is not None, "no title call was admitted"
            return title
        await asyncio.sleep(0.05)


async def test_the_next_message_right_after_a_reply_is_not_refused_for_its_title_call(
    alice: User, chat_model: ModelConfig, simulator: str, generation_service: Any
) -> None:
    await UserLimits.objects.acreate(user=alice, concurrent_streams=1)
    untitled = await Conversation.objects.acreate(owner=alice, model=chat_model)
    socket = await open_socket(alice, untitled)
    # The directive is in the first question, which the title call sends too: it waits for its
    # first token as a slow upstream would, and is still running when the user goes on (4 s:
    # however slowly a loaded machine runs the steps between).
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c1",
            "content": "[[sim: first_token_latency=4 say=One.]]",
        }
    )
    assert (await socket.until_reply_ends())["type"] == "reply.completed"
    title = await title_call_admitted()
    assert title.state == UsageRecord.State.RESERVED  # still running
    await socket.send({"type": "message.send", "client_id": "c2", "content": "[[sim: say=Two.]]"})
    answer = await socket.until(lambda f: f["type"] in ("error", "reply.completed"))
    assert answer["type"] == "reply.completed", answer
    await socket.until_type("conversation.updated")  # the title call ended
    await socket.close()
    await title.arefresh_from_db()
    assert title.state == UsageRecord.State.SETTLED and not title.holds_stream
    assert (await UsageAccount.objects.aget(user=alice)).streams == 0
