"""A user's next message sent the moment the first reply ends, while the conversation's title
call is being admitted: both go through. The message gets its reply and the title call names
the conversation.

Before, the two took the same two locks in opposite orders — the title's admission locked the
conversation's row and then the user's usage row, a message's admission the usage row and then
the conversation's row (to touch it) — and PostgreSQL broke the deadlock by failing one of
them: the message was answered "Something went wrong on our side", or the conversation was
never named.

The race is forced: an outside transaction holds the user's usage row while the message's
admission and then the title's wait for it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import generation
from conversations.models import Conversation, ModelConfig, UsageRecord, User
from tests.support import open_socket, title_context, usage_account
from tests.test_a_continue_and_a_message_under_the_same_reply_take_turns import (
    _hold_usage_row,
    _waiting_on_locks,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

FIRST_TEXT = "How do I rotate the deploy keys? [[sim: say=Rotating deploy keys]]"


async def test_the_message_and_the_title_call_both_go_through(
    alice: User, chat_model: ModelConfig, simulator: str, generation_service: Any
) -> None:
    conversation = await Conversation.objects.acreate(owner=alice, model=chat_model)
    await sync_to_async(usage_account)(alice)
    tab = await open_socket(alice, conversation)
    try:
        holder = _hold_usage_row(alice)
        try:
            await tab.send(
                {"type": "message.send", "client_id": "c1", "content": "[[sim: say=Sure.]]"}
            )
            await _waiting_on_locks(holder, 1)
            title = asyncio.ensure_future(
                generation.generate_title(
                    generation_service, title_context(conversation, FIRST_TEXT), "Keys."
                )
            )
            await _waiting_on_locks(holder, 2)
        finally:
            holder.commit()
            holder.close()
        end = await tab.until(
            lambda f: f["type"] in ("reply.completed", "reply.failed", "error"), timeout=30
        )
        assert end["type"] == "reply.completed", end
        await asyncio.wait_for(title, 30)
    finally:
        await tab.close()
    await conversation.arefresh_from_db()
    assert conversation.title == "Rotating deploy keys"
    assert await UsageRecord.objects.filter(
        purpose=UsageRecord.Purpose.TITLE, state=UsageRecord.State.SETTLED
    ).aexists()
