"""A key with "save to history" records each API call as a conversation in the user's list;
other keys leave no trace there."""

from __future__ import annotations

import pytest

from conversations.models import Conversation, ModelConfig, UsageRecord, User
from tests.support import eventually
from tests.test_api_support import all_settled, bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Summarise the deploy notes [[sim: say=All green.]]"},
]


def test_a_saving_key_records_the_exchange_as_a_conversation(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    key = make_key(alice, save_history=True)
    for stream in (False, True):
        response = chat(base, bearer(key), messages=MESSAGES, stream=stream)
        assert response.status_code == 200

    def both_saved() -> list[Conversation]:
        conversations = list(Conversation.objects.filter(owner=alice).order_by("created_at"))
        assert len(conversations) == 2
        return conversations

    conversations = eventually(both_saved)  # saved just after each answer went out
    for conversation in conversations:
        assert conversation.system_prompt == "Be brief."
        assert conversation.title.startswith("Summarise the deploy notes")
        user_message, reply = conversation.messages.order_by("created_at")
        assert user_message.role == "user" and user_message.author == alice
        assert reply.role == "assistant" and reply.parent == user_message
        assert reply.content == "All green." and reply.status == "complete"
        record = UsageRecord.objects.get(conversation=conversation)
        assert record.message == reply and record.purpose == "api"


def test_other_keys_leave_the_chat_list_alone(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    assert chat(base, bearer(make_key(alice)), messages=MESSAGES).status_code == 200
    all_settled(user=alice)  # what a saving key's call would have saved by then
    assert not Conversation.objects.filter(owner=alice).exists()
