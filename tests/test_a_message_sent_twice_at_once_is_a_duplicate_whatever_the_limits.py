"""The same ``message.send`` (one client id) sent on two tabs at once, when the user's limits
leave room for one reply only: one tab's attempt starts the reply, the other is answered the
existing message (``duplicate``), as a retry is. A client id names one request: its second
attempt never starts a second generation nor a second charge, and is never refused for the
first attempt's own reservation or stream slot.

Before, the second attempt's admission (waiting for the user's usage row while the first held
it) counted the first attempt's reservation and refused the message as over the day's tokens
or the replies at once, although it was the very message being answered.

The race is forced: an outside transaction holds the user's usage row, so the first attempt
waits for it past its client-id check, and the second comes meanwhile."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, Message, UsageRecord, User, UserLimits
from tests.support import open_socket, usage_account
from tests.test_a_continue_and_a_message_under_the_same_reply_take_turns import (
    _hold_usage_row,
    _waiting_on_locks,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

# Room for one reply and not two: a reply reserves its padded prompt + 1,000 output tokens.
TIGHT = {
    "tokens": {"tokens_per_day": 1_500, "max_output_tokens": 1_000},
    "streams": {"concurrent_streams": 1},
}


@pytest.mark.parametrize("limit", TIGHT)
async def test_the_second_attempt_is_the_duplicate_not_a_refusal(
    alice: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
    limit: str,
) -> None:
    await UserLimits.objects.acreate(user=alice, **TIGHT[limit])
    await sync_to_async(usage_account)(alice)
    frame = {"type": "message.send", "client_id": "c1", "content": "[[sim: say=Hello there.]]"}
    tab_a = await open_socket(alice, alice_conversation)
    tab_b = await open_socket(alice, alice_conversation)
    try:
        holder = _hold_usage_row(alice)
        try:
            await tab_a.send(frame)
            await _waiting_on_locks(holder, 1)
            await tab_b.send(frame)
            await _waiting_on_locks(holder, 2)
        finally:
            holder.commit()
            holder.close()

        answer = await tab_b.until(lambda f: f["type"] == "error" or bool(f.get("duplicate")))
        assert answer["type"] == "message.created", answer
        assert (await tab_a.until_reply_ends())["type"] == "reply.completed"
        assert not tab_a.of_type("error")

        question = await Message.objects.aget(role="user")
        assert answer["message"]["id"] == str(question.pk)
        reply = await Message.objects.aget(role="assistant")
        assert (reply.parent_id, reply.content) == (question.pk, "Hello there.")
        assert await UsageRecord.objects.filter(user=alice, purpose="chat").acount() == 1
    finally:
        await tab_a.close()
        await tab_b.close()
