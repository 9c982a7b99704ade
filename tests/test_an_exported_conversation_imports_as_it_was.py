"""An exported branch imports as it was: the conversation's parameters, a reasoning model's
reasoning, tool calls and their answers, a reply cut off at its length limit and one that was
interrupted (both still continuable, as in the original), and exporting the import gives the
same file again. The export said nothing of the parameters nor of how a reply ended: imported,
every reply was a complete one and the parameters were the defaults."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, Message, ModelConfig, User
from tests.support import client_for, open_socket

CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
}


def _message(
    conversation: Conversation, parent: Message | None, role: str, **fields: Any
) -> Message:
    if role == "assistant":
        fields.setdefault("model", conversation.model)
        fields.setdefault("finish_reason", "stop")
    else:
        fields.setdefault("author", conversation.owner)
    return Message.objects.create(conversation=conversation, parent=parent, role=role, **fields)


def _branched(owner: User, model: ModelConfig) -> Conversation:
    """Edited and regenerated messages; the newest branch ends with an interrupted reply."""
    conversation = Conversation.objects.create(
        owner=owner,
        model=model,
        title="Trip planning",
        system_prompt="You are terse.",
        params={"temperature": 0.3, "max_tokens": 900},
    )
    first = _message(conversation, None, "user", content="Where to go?")
    _message(conversation, first, "assistant", content="Old answer.", reasoning="old thought")
    regenerated = _message(
        conversation, first, "assistant", content="Oslo.", reasoning="Think of fjords."
    )
    _message(conversation, regenerated, "user", content="Weather there? (before the edit)")
    edited = _message(conversation, regenerated, "user", content="Weather in Oslo?")
    calling = _message(conversation, edited, "assistant", content="", tool_calls=[CALL])
    answer = _message(conversation, calling, "tool", content="12 C, rain", tool_call_id="call_1")
    cut = _message(
        conversation, answer, "assistant", content="It is 12 C and", finish_reason="length"
    )
    more = _message(conversation, cut, "user", content="And tomorrow?")
    _message(
        conversation,
        more,
        "assistant",
        content="Tomorrow it",
        status=Message.Status.INTERRUPTED,
        finish_reason="",
    )
    return conversation


@pytest.mark.django_db
def test_an_import_shows_the_branch_as_it_was_and_exports_the_same_file(
    alice: User, reasoner_model: ModelConfig
) -> None:
    client = client_for(alice)
    original = _branched(alice, reasoner_model)
    first = client.get(f"/c/{original.id}/export.json").json()

    response = client.post("/c/import/", data=first, content_type="application/json")
    assert response.status_code == 201, response.content[:300]
    imported = Conversation.objects.get(pk=response.json()["id"])
    assert imported.params == original.params
    assert imported.system_prompt == "You are terse." and imported.model == reasoner_model
    replies = list(imported.messages.filter(role="assistant").order_by("created_at"))
    assert [(r.content, r.reasoning) for r in replies] == [
        ("Oslo.", "Think of fjords."),
        ("", ""),
        ("It is 12 C and", ""),
        ("Tomorrow it", ""),
    ]
    assert [(r.status, r.finish_reason) for r in replies] == [
        ("complete", "stop"),
        ("complete", "stop"),
        ("complete", "length"),
        ("interrupted", ""),
    ]
    assert replies[1].tool_calls == [CALL]

    again = client.get(f"/c/{imported.id}/export.json").json()
    assert again == first
    markdown = client.get(f"/c/{imported.id}/export.md").content.decode()
    assert markdown == client.get(f"/c/{original.id}/export.md").content.decode()
    assert "Think of fjords." in markdown and "Weather in Oslo?" in markdown
    assert "before the edit" not in markdown
    # As the page does, it says which replies ended early.
    assert "It is 12 C and\n\n*The reply was cut off at the token limit.*" in markdown
    assert "Tomorrow it\n\n*The reply did not finish.*" in markdown


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_an_imported_reply_cut_off_at_its_limit_can_be_continued(
    alice: User, chat_model: ModelConfig, simulator: str, generation_service: Any
) -> None:
    body = {
        "title": "Cut",
        "model": chat_model.name,
        "messages": [
            {"role": "user", "content": "Count."},
            {"role": "assistant", "content": "One, two,", "finish_reason": "length"},
        ],
    }
    client = await sync_to_async(client_for)(alice)
    response = await sync_to_async(client.post)(
        "/c/import/", data=body, content_type="application/json"
    )
    assert response.status_code == 201, response.content[:300]
    conversation = await Conversation.objects.aget(pk=response.json()["id"])
    reply = await Message.objects.aget(conversation=conversation, role="assistant")

    socket = await open_socket(alice, conversation)
    await socket.send({"type": "reply.continue", "reply_id": str(reply.id)})
    end = await socket.until(lambda f: f["type"] in ("reply.completed", "reply.failed", "error"))
    await socket.close()
    assert end["type"] == "reply.completed", end
    await reply.arefresh_from_db()
    assert reply.content.startswith("One, two,") and len(reply.content) > len("One, two,")


@pytest.mark.django_db
def test_a_reply_stopped_while_it_thought_keeps_its_thinking(
    alice: User, reasoner_model: ModelConfig
) -> None:
    client = client_for(alice)
    original = Conversation.objects.create(owner=alice, model=reasoner_model, title="Stopped")
    question = _message(original, None, "user", content="Prove it.")
    _message(
        original,
        question,
        "assistant",
        content="",
        reasoning="Let me consider the base case",
        status=Message.Status.CANCELLED,
        finish_reason="",
    )
    first = client.get(f"/c/{original.id}/export.json").json()
    assert first["messages"][-1] == {
        "role": "assistant",
        "content": "",
        "reasoning_content": "Let me consider the base case",
        "status": "cancelled",
    }

    response = client.post("/c/import/", data=first, content_type="application/json")
    assert response.status_code == 201, response.content[:300]
    reply = Message.objects.get(conversation_id=response.json()["id"], role="assistant")
    assert (reply.reasoning, reply.status) == ("Let me consider the base case", "cancelled")
    assert client.get(f"/c/{reply.conversation_id}/export.json").json() == first
    markdown = client.get(f"/c/{reply.conversation_id}/export.md").content.decode()
    assert "> Let me consider the base case\n\n*Stopped.*" in markdown
