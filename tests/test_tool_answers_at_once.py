"""Two tool answers given at the same moment (two tabs, two people) hang in one chain under
the reply, and the last of them starts the next reply exactly once. The same answer given
twice at the same moment (a retry on another socket) is one answer, and both are told so."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from conversations import actions
from conversations.models import Conversation, Message, User

pytestmark = pytest.mark.django_db(transaction=True)

CALLS = [
    {"id": f"call_{name}", "type": "function", "function": {"name": name, "arguments": "{}"}}
    for name in ("weather", "time")
]


def answer_together(
    user: User, conversation: Conversation, reply: Message, call_ids: list[str] | None = None
) -> list[object]:
    """Each of ``call_ids`` (default: one answer per call) answered on a thread of its own,
    at once; what each was told."""
    call_ids = call_ids or [c["id"] for c in CALLS]
    barrier = threading.Barrier(len(call_ids))
    results: list[object] = []

    def answer(call_id: str) -> None:
        try:
            barrier.wait()
            results.append(
                actions.answer_tool_call(
                    user,
                    conversation.id,
                    reply_id=str(reply.pk),
                    tool_call_id=call_id,
                    content=f"result of {call_id}",
                    client_id=f"answer-{call_id}-{reply.pk}",
                    channel="tests!x",
                )
            )
        except Exception as error:  # recorded: the test says which
            results.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=answer, args=(call_id,)) for call_id in call_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def _asking_for_tools(user: User, conversation: Conversation) -> Message:
    """A reply that finished asking for both of :data:`CALLS`."""
    question = Message.objects.create(
        conversation=conversation, role="user", author=user, content="Weather and time?"
    )
    return Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        status="complete",
        finish_reason="tool_calls",
        tool_calls=CALLS,
    )


@pytest.mark.parametrize("attempt", range(5))
def test_answers_given_at_once_form_one_chain_and_one_next_reply(
    alice: User, alice_conversation: Conversation, attempt: int
) -> None:
    reply = _asking_for_tools(alice, alice_conversation)
    results = answer_together(alice, alice_conversation, reply)
    assert not [r for r in results if isinstance(r, Exception)], results
    first = Message.objects.get(parent=reply, role="tool")  # one answer directly under it
    second = Message.objects.get(parent=first, role="tool")  # the other under that one
    assert {first.tool_call_id, second.tool_call_id} == {c["id"] for c in CALLS}
    assert Message.objects.filter(role="assistant", parent=second).count() == 1
    assert not Message.objects.filter(role="assistant", parent=first).exists()


@pytest.mark.parametrize("attempt", range(5))
def test_the_same_answer_given_twice_at_once_is_one_answer(
    alice: User, alice_conversation: Conversation, attempt: int
) -> None:
    reply = _asking_for_tools(alice, alice_conversation)
    # Same call, same client id: the second attempt waits for the reply's row, then finds
    # the call answered, by itself.
    results = answer_together(alice, alice_conversation, reply, ["call_weather"] * 2)
    assert not [r for r in results if isinstance(r, Exception)], results
    turns = [r for r in results if isinstance(r, actions.Turn)]
    assert len({turn.reply.pk for turn in turns}) == 1
    assert Message.objects.filter(role="tool").count() == 1
