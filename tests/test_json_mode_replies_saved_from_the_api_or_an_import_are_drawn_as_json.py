"""A reply is drawn as JSON when it was itself asked for in JSON mode (its own parameters,
``message_frame``'s ``json_mode``). A reply saved to history from an API call in JSON mode, or
imported from an export in JSON mode, kept no parameters of its own, so it was drawn as
markdown while its conversation said JSON mode."""

from __future__ import annotations

from typing import Any

import pytest

from conversations import api_keys, ui_actions
from conversations.frames import message_frame
from conversations.models import Conversation, ModelConfig, User
from conversations.upstream import ChatResult
from tests.test_api_support import saving_call

pytestmark = pytest.mark.django_db

JSON_MODE = {"response_format": {"type": "json_object"}}


def frames_of(conversation: Conversation) -> list[dict[str, Any]]:
    return [dict(message_frame(m)) for m in conversation.messages.order_by("created_at")]


def test_a_json_mode_api_call_saved_to_history_is_drawn_as_json(
    alice: User, chat_model: ModelConfig
) -> None:
    messages = [{"role": "user", "content": "The release as json"}]
    call = saving_call(alice, chat_model, messages, JSON_MODE)
    api_keys.save_to_history(call, ChatResult(text='{"name": "x"}', finish_reason="stop"))
    conversation = Conversation.objects.get(owner=alice)
    assert conversation.params == JSON_MODE
    asked, reply = frames_of(conversation)
    assert (asked["json_mode"], reply["json_mode"]) == (False, True)


def test_a_json_mode_export_imports_with_its_replies_drawn_as_json(
    alice: User, chat_model: ModelConfig
) -> None:
    conversation = ui_actions.import_conversation(
        alice,
        {
            "model": chat_model.name,
            "params": JSON_MODE,
            "messages": [
                {"role": "user", "content": "The release as json"},
                {"role": "assistant", "content": '{"name": "x"}'},
            ],
        },
    )
    asked, reply = frames_of(conversation)
    assert (asked["json_mode"], reply["json_mode"]) == (False, True)
