"""A key's "save to history" copies the call's messages and its reply as one chain in a few
statements. One INSERT a message held a database thread (the pool the chat shares) for about a
minute for a 50,000-message body; a few such calls stalled a worker's chat."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations import api_keys
from conversations.models import Conversation, ModelConfig, User
from conversations.upstream import ChatResult
from tests.support import eventually
from tests.test_api_support import bearer, chat, make_key, saving_call

pytestmark = pytest.mark.django_db(transaction=True)


def history(pairs: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "Be brief."}]
    for i in range(pairs):
        messages.append({"role": "user", "content": f"Question {i}"})
        messages.append({"role": "assistant", "content": f"Answer {i}"})
    messages.append({"role": "user", "content": "And last? [[sim: say=The end.]]"})
    return messages


def test_a_long_history_is_copied_in_a_few_statements(alice: User, chat_model: ModelConfig) -> None:
    messages = history(600)
    call = saving_call(alice, chat_model, messages)
    with CaptureQueriesContext(connection) as queries:
        api_keys.save_to_history(call, ChatResult(text="The end.", finish_reason="stop"))
    assert len(queries) < 20, len(queries)  # before: one INSERT a message, 1,206 statements

    conversation = Conversation.objects.get(owner=alice)
    chain = list(conversation.messages.order_by("created_at"))
    assert [m.content for m in chain] == [
        *(m["content"] for m in messages[1:]),
        "The end.",
    ]
    parents = [None, *(m.id for m in chain[:-1])]
    assert [m.parent_id for m in chain] == parents


@pytest.mark.timeout(120)
def test_a_long_call_saved_over_the_api_reads_as_it_was_sent(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    messages = history(300)
    response = chat(base, bearer(make_key(alice, save_history=True)), messages=messages)
    assert response.status_code == 200, response.text

    conversation = eventually(lambda: Conversation.objects.get(owner=alice))
    chain = list(conversation.messages.order_by("created_at"))
    assert len(chain) == len(messages)  # the system prompt out, the reply in
    assert chain[0].parent_id is None and chain[0].author == alice
    assert chain[-1].content == "The end." and chain[-1].parent_id == chain[-2].id
    assert chain[-1].status == "complete"
    # The page opens on the chain's end: the reply.
    assert conversation.system_prompt == "Be brief."
