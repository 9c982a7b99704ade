"""A file that is not an export of ours is refused, saying what is wrong with it, and nothing of
it is stored. A model the file names that does not exist was silently replaced by another one,
parameters out of range were dropped, a tool message answering no call was stored (and then
the conversation could not be continued: the upstream refuses such a message), and a
``reasoning_content`` of any length was stored, on any role (never shown on one but a reply's)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations.models import Conversation, ModelConfig, User
from tests.support import client_for

pytestmark = pytest.mark.django_db

USER = {"role": "user", "content": "Hi"}
REPLY = {"role": "assistant", "content": "Hello"}


def _post(user: User, body: str) -> Any:
    return client_for(user).post("/c/import/", data=body, content_type="application/json")


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ("not json {", "body", "not valid JSON"),
        (json.dumps([USER, REPLY]), "file", "holds a list"),
        (json.dumps({"messages": "Hi"}), "messages", "must be a list"),
        ("[" * 5000 + "]" * 5000, "body", ""),
        (json.dumps({"messages": [{"role": "developer", "content": "x"}]}), "messages", "role"),
        (
            json.dumps({"messages": [{"role": "user", "content": [{"type": "text"}]}]}),
            "messages",
            "messages[0].content",
        ),
        (json.dumps({"messages": [USER] * 2001}), "messages", "at most 2000"),
        (
            json.dumps({"messages": [{"role": "user", "content": "x" * 100_001}]}),
            "messages",
            "longer than",
        ),
        (
            json.dumps({"messages": [{**USER, "reasoning_content": "hidden"}]}),
            "messages",
            "messages[0].reasoning_content is only for an assistant message",
        ),
        (
            json.dumps({"messages": [USER, {**REPLY, "reasoning_content": "x" * 100_001}]}),
            "messages",
            "messages[1].reasoning_content is longer than 100000 characters",
        ),
        (
            json.dumps({"messages": [USER, {**REPLY, "reasoning_content": ["x"]}]}),
            "messages",
            "messages[1].reasoning_content must be text",
        ),
        (json.dumps({"model": "gpt-4o", "messages": [USER, REPLY]}), "model", "gpt-4o"),
        (
            json.dumps({"params": {"temperature": 5}, "messages": [USER]}),
            "temperature",
            "temperature",
        ),
        (json.dumps({"params": {"stream": True}, "messages": [USER]}), "stream", "stream"),
        (json.dumps({"params": [], "messages": [USER]}), "params", "params"),
        (
            json.dumps(
                {"messages": [USER, {"role": "tool", "tool_call_id": "c1", "content": "1"}]}
            ),
            "messages",
            "messages[1] (a tool message)",
        ),
        (
            json.dumps({"messages": [USER, {**REPLY, "status": "done"}]}),
            "messages",
            "messages[1].status",
        ),
        (
            json.dumps({"messages": [{**USER, "finish_reason": "length"}]}),
            "messages",
            "messages[0]",
        ),
        (
            json.dumps({"messages": [USER, {**REPLY, "finish_reason": 3}]}),
            "messages",
            "finish_reason",
        ),
    ],
)
def test_a_broken_file_is_refused_and_nothing_is_stored(
    alice: User, chat_model: ModelConfig, body: str, param: str, words: str
) -> None:
    response = _post(alice, body)
    assert response.status_code in (400, 403), response.content[:300]
    error = response.json()["error"]
    assert error["param"] == param and words in error["message"], error
    assert not Conversation.objects.filter(owner=alice).exists()
    # The worker goes on: the next, well-formed file imports.
    assert _post(alice, json.dumps({"messages": [USER, REPLY]})).status_code == 201


def test_a_disabled_model_is_refused_by_name(alice: User, chat_model: ModelConfig) -> None:
    ModelConfig.objects.filter(pk=chat_model.pk).update(enabled=False)
    response = _post(alice, json.dumps({"model": chat_model.name, "messages": [USER]}))
    assert response.status_code == 403, response.content[:300]
    assert f"The model {chat_model.name} is disabled" in response.json()["error"]["message"]
    assert not Conversation.objects.filter(owner=alice).exists()


def test_a_file_without_a_model_takes_one_its_importer_may_use(
    alice: User, chat_model: ModelConfig
) -> None:
    response = _post(alice, json.dumps({"messages": [USER, REPLY]}))
    assert response.status_code == 201
    assert Conversation.objects.get(owner=alice).model == chat_model


def test_thousands_of_messages_import_in_one_go(alice: User, chat_model: ModelConfig) -> None:
    """In a few statements (they were inserted one row at a time, ~2 s of the request), as one
    chain in the file's order, the newest its end."""
    messages = [{**m, "content": f"{m['content']} {i}"} for i, m in enumerate([USER, REPLY] * 1000)]
    client = client_for(alice)
    with CaptureQueriesContext(connection) as queries:
        started = time.monotonic()
        response = client.post(
            "/c/import/",
            data=json.dumps({"model": chat_model.name, "messages": messages}),
            content_type="application/json",
        )
        print(f"import of 2000 messages: {time.monotonic() - started:.2f} s")
    assert response.status_code == 201, response.content[:300]
    inserts = [q for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) <= 6, len(inserts)
    conversation = Conversation.objects.get(owner=alice)
    rows = list(conversation.messages.order_by("created_at"))
    assert [r.content for r in rows] == [m["content"] for m in messages]
    assert [r.parent_id for r in rows] == [None] + [r.id for r in rows[:-1]]
    exported = client_for(alice).get(f"/c/{conversation.id}/export.json").json()
    assert exported["messages"] == messages
