"""A new conversation whose first reply was reaped (its process died mid-stream) is named
as one whose first reply ended otherwise is, and its open pages hear the title: only the
reply's own task named it, and a dead process's never would, so it stayed "New chat"."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, ModelConfig, UsageRecord, User
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
