"""Rows inserted by the turn's one statement (``rows.insert_sql`` with a condition: the rows
travel as one JSON parameter) read back exactly as the ORM would have stored them."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from conversations import rows
from conversations.models import Conversation, Message, ModelConfig, User

pytestmark = pytest.mark.django_db


def _fields(message: Message) -> dict[str, object]:
    return {f.attname: getattr(message, f.attname) for f in Message._meta.concrete_fields}


def test_every_column_survives_the_trip(alice: User, chat_model: ModelConfig) -> None:
    conversation = Conversation.objects.create(owner=alice, model=chat_model)
    question = Message(
        conversation=conversation,
        role=Message.Role.USER,
        author=alice,
        content="Quotes ' \" \\ backslash, NUL-free unicode: ü 日本 😀, and\nnew lines",
        client_id="c-1",
    )
    reply = Message(
        conversation=conversation,
        parent=question,
        role=Message.Role.ASSISTANT,
        model=chat_model,
        status=Message.Status.PENDING,
        params={"temperature": 0.25, "stop": ["\n\n", "END"], "nested": {"a": [1, None, True]}},
        tool_calls=None,
        logprobs=[{"token": "x", "logprob": -0.5}],
        seq=3,
        heartbeat_at=timezone.now() - timedelta(microseconds=123457),
    )
    sql, values = rows.insert_sql([question, reply], where="true")
    assert len(values) == 1  # one parameter, whatever the number of rows
    with rows.server_bound_cursor() as cursor:
        cursor.execute(sql, values)
        assert cursor.rowcount == 2
    for sent in (question, reply):
        stored = Message.objects.get(pk=sent.pk)
        assert _fields(stored) == _fields(sent)
    assert Message.objects.get(pk=reply.pk).tool_calls is None  # SQL NULL, not JSON null


def test_a_false_condition_inserts_nothing(alice: User, chat_model: ModelConfig) -> None:
    conversation = Conversation.objects.create(owner=alice, model=chat_model)
    message = Message(conversation=conversation, role=Message.Role.USER, content="hi")
    sql, values = rows.insert_sql([message], where="false")
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
    assert not Message.objects.filter(pk=message.pk).exists()
    assert isinstance(message.pk, uuid.UUID)
