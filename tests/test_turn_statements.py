"""A turn costs the same few statements however long its conversation is, and sends the whole
branch upstream: the history it reads is only what a turn needs, and nothing it left out is
read back one row at a time."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations import actions
from conversations.models import Conversation, Message, ModelConfig, User

pytestmark = pytest.mark.django_db


def _statements(queries: CaptureQueriesContext) -> int:
    """Statements run, not counting the savepoint that guards them in the test's transaction."""
    return sum(1 for q in queries if "SAVEPOINT" not in str(q["sql"]))


def test_a_turn_in_a_long_conversation_is_four_statements(
    alice: User, chat_model: ModelConfig
) -> None:
    conversation = Conversation.objects.create(owner=alice, model=chat_model)
    parent = None
    for i in range(12):
        question = Message.objects.create(
            conversation=conversation,
            parent=parent,
            role=Message.Role.USER,
            author=alice,
            content=f"question {i} " * 50,
        )
        parent = Message.objects.create(
            conversation=conversation,
            parent=question,
            role=Message.Role.ASSISTANT,
            model=chat_model,
            content=f"answer {i}",
            reasoning=f"thought {i}",
            status=Message.Status.COMPLETE,
            logprobs=[{"token": "a", "logprob": -0.1}] * 20,
            usage={"prompt_tokens": 10, "completion_tokens": 2},
            params={"temperature": 0.5},
        )
    with CaptureQueriesContext(connection) as queries:
        turn = actions.send_message(
            alice, conversation.id, client_id="c-new", content="one more", channel="x"
        )
    assert _statements(queries) == 4
    question = turn.new_messages[0]
    assert question.parent_id == parent.pk
    context = actions.prepared_context(turn.reply)
    assert context is not None
    full_branch = actions.path_to(conversation, question.pk)
    assert len(full_branch) == 25
    assert context.messages == actions.upstream_messages(conversation, full_branch)
    assert context.messages[1] == {
        "role": "assistant",
        "content": "answer 0",
        "reasoning_content": "thought 0",
    }
    assert context.first_user_text == "question 0 " * 50


def test_a_turn_below_a_chosen_message_reads_its_branch(
    alice: User, chat_model: ModelConfig
) -> None:
    conversation = Conversation.objects.create(owner=alice, model=chat_model)
    root = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, author=alice, content="root"
    )
    chosen = Message.objects.create(
        conversation=conversation,
        parent=root,
        role=Message.Role.ASSISTANT,
        model=chat_model,
        content="the chosen answer",
        status=Message.Status.COMPLETE,
    )
    Message.objects.create(  # a later sibling: the latest message, on another branch
        conversation=conversation,
        parent=root,
        role=Message.Role.ASSISTANT,
        model=chat_model,
        content="another answer",
        status=Message.Status.COMPLETE,
    )
    with CaptureQueriesContext(connection) as queries:
        turn = actions.send_message(
            alice,
            conversation.id,
            client_id="c-branch",
            content="follow-up",
            parent_id=str(chosen.pk),
            channel="x",
        )
    assert _statements(queries) == 4
    context = actions.prepared_context(turn.reply)
    assert context is not None
    assert [m["content"] for m in context.messages] == ["root", "the chosen answer", "follow-up"]
