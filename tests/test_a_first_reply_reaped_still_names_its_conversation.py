"""A new conversation whose first reply was reaped (its process died mid-stream) is named
as one whose first reply ended otherwise is, and its open pages hear the title: only the
reply's own task named it, and a dead process's never would, so it stayed "New chat"."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, Message, ModelConfig, UsageRecord, User
from tests.support import open_socket
from tests.test_reaper import orphan_reply

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def test_a_reaped_first_reply_names_its_conversation(
    alice: User, chat_model: ModelConfig, simulator: str, generation_service: Any
) -> None:
    conversation = await Conversation.objects.acreate(owner=alice, model=chat_model)
    await sync_to_async(orphan_reply)(alice, conversation, heartbeat_age=120)
    socket = await open_socket(alice, conversation)
    assert await generation_service.reap() == 1
    updated = await socket.until_type("conversation.updated")
    await socket.close()
    await conversation.arefresh_from_db()
    assert conversation.title and updated["title"] == conversation.title
    # The reply had text: the title call named it.
    assert await UsageRecord.objects.filter(
        conversation=conversation, purpose=UsageRecord.Purpose.TITLE
    ).aexists()


async def test_a_conversation_that_cannot_be_named_holds_back_no_other_reaped_end(
    alice: User, chat_model: ModelConfig, simulator: str, generation_service: Any
) -> None:
    """The reaper tells every reaped reply's end before naming any conversation: naming one
    that fails (here, stored tool calls of a shape the naming cannot read) must not keep the
    next reply's sockets waiting for an end no later pass would tell."""
    sockets = []
    for _ in range(2):
        conversation = await Conversation.objects.acreate(owner=alice, model=chat_model)
        reply = await sync_to_async(orphan_reply)(alice, conversation, heartbeat_age=120)
        await Message.objects.filter(pk=reply.pk).aupdate(tool_calls=["not a call"])
        sockets.append(await open_socket(alice, conversation))
    assert await generation_service.reap() == 2
    for socket in sockets:
        failed = await socket.until_type("reply.failed")
        assert failed["code"] == "worker_lost"
        await socket.close()


async def test_a_process_shutting_down_names_it_without_a_call(
    alice: User, chat_model: ModelConfig, simulator: str, generation_service: Any
) -> None:
    """Once a shutdown has begun nothing would wait for a title call to be settled: the first
    words of the message name the conversation instead, and no call is made."""
    conversation = await Conversation.objects.acreate(owner=alice, model=chat_model)
    await sync_to_async(orphan_reply)(alice, conversation, heartbeat_age=120)
    socket = await open_socket(alice, conversation)
    generation_service.accepting = False
    assert await generation_service.reap() == 1
    updated = await socket.until_type("conversation.updated")
    await socket.close()
    assert updated["title"] == "Hello"
    assert not await UsageRecord.objects.filter(
        conversation=conversation, purpose=UsageRecord.Purpose.TITLE
    ).aexists()
