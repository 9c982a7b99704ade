"""A share link's socket is sent what the shared page shows — the user and assistant messages'
author, text and state on the shown branch — and nothing more: no reasoning, tool calls or
results, usage, logprobs or account ids, and no reply of another branch by its id."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import sharing
from conversations.models import Conversation, ModelConfig, User
from tests.support import Socket, client_for, open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

MESSAGE_FIELDS = {
    "id",
    "parent_id",
    "role",
    "author",
    "content",
    "status",
    "finish_reason",
    "seq",
    "created_at",
}
FRAME_FIELDS = {
    "message.created": {"type", "message"},
    "reply.started": {"type", "reply_id", "seq"},
    "reply.delta": {"type", "reply_id", "seq", "content"},
    "reply.completed": {"type", "reply_id", "seq", "status", "finish_reason"},
    "reply.failed": {"type", "reply_id", "seq", "status"},
    "reply.snapshot": {"type", "reply_id", "seq", "status", "mode", "content", "finish_reason"},
    "conversation.updated": {"type", "title"},
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_ticket",
            "description": "Fetch a ticket",
            "parameters": {
                "type": "object",
                "properties": {"key": {"type": "string"}},
                "required": ["key"],
            },
        },
    }
]


def assert_only_the_shared_text(frames: list[dict[str, Any]]) -> None:
    for frame in frames:
        if frame["type"] in ("ready", "error"):
            continue
        assert set(frame) <= FRAME_FIELDS[frame["type"]], frame
        # Only the ends the page explains (cut off, filtered): not that a reply called a tool.
        assert frame.get("finish_reason", "") in ("", "length", "content_filter"), frame
        if frame["type"] == "message.created":
            message = frame["message"]
            assert set(message) == MESSAGE_FIELDS, message
            assert message["role"] in ("user", "assistant"), message
            assert message["finish_reason"] in ("", "length", "content_filter"), message


async def test_a_link_socket_gets_the_text_of_a_tool_using_reply_and_nothing_else(
    alice: User,
    charlie: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
) -> None:
    _, token = await sync_to_async(sharing.create_share_link)(alice, alice_conversation.id)
    viewer = await open_socket(charlie, alice_conversation, link=token)
    owner = await open_socket(alice, alice_conversation)
    await owner.send(
        {
            "type": "message.send",
            "client_id": "a1",
            "content": "[[sim: say=Counting the tickets.]]",
            "params": {"logprobs": True, "top_logprobs": 2},
        }
    )
    await owner.until_reply_ends()
    await owner.send(
        {
            "type": "message.send",
            "client_id": "a2",
            "content": "What is the status of OPS-17? Use lookup_ticket.",
            "params": {"tools": TOOLS},
        }
    )
    asked = await owner.until_reply_ends()
    assert asked["finish_reason"] == "tool_calls", asked
    call_id = next(
        call["id"]
        for frame in owner.of_type("reply.delta")
        for call in frame.get("tool_calls", [])
        if call.get("id")
    )
    await owner.send(
        {
            "type": "tool.answer",
            "reply_id": asked["reply_id"],
            "tool_call_id": call_id,
            "content": '{"status": "in review"}',
            "client_id": "t1",
        }
    )
    answered = await owner.until_reply_ends()
    assert answered["type"] == "reply.completed"

    await viewer.until(
        lambda f: f["type"] == "reply.completed" and f["reply_id"] == answered["reply_id"]
    )
    await viewer.send({"type": "reply.sync", "reply_id": answered["reply_id"], "after_seq": 0})
    snapshot = await viewer.until_type("reply.snapshot")

    assert_only_the_shared_text(viewer.frames)
    assert snapshot["content"], "the reply's text is what the link shows"
    # Two questions, their replies, and the reply after the tool's answer (not the answer).
    assert len(viewer.of_type("message.created")) == 5
    assert any(f.get("content") for f in viewer.of_type("reply.delta"))
    await viewer.close()
    await owner.close()

    # The shared page lists the same: the replies' text, not the tool's result.
    page = await sync_to_async(lambda: client_for(charlie).get(f"/s/{token}/"))()
    assert page.status_code == 200
    html = page.content.decode()
    assert "Counting the tickets." in html and "That answers the question" in html
    assert 'aria-label="Tool"' not in html
    assert html.count("<article") == 4  # the reply that only called the tool has no text


async def sync(socket: Socket, reply_id: str) -> dict[str, Any]:
    await socket.send({"type": "reply.sync", "reply_id": reply_id, "after_seq": 0})
    return await socket.until(lambda f: f["type"] in ("reply.snapshot", "error"))


async def test_a_link_socket_gets_no_reasoning_and_no_reply_of_another_branch(
    alice: User,
    charlie: User,
    reasoner_model: ModelConfig,
    simulator: str,
    generation_service: Any,
) -> None:
    conversation = await Conversation.objects.acreate(owner=alice, model=reasoner_model, title="t")
    _, token = await sync_to_async(sharing.create_share_link)(alice, conversation.id)
    owner = await open_socket(alice, conversation)
    await owner.send({"type": "message.send", "client_id": "a1", "content": "[[sim: say=First.]]"})
    first = await owner.until_reply_ends()
    viewer = await open_socket(charlie, conversation, link=token)
    await owner.send({"type": "reply.regenerate", "reply_id": first["reply_id"], "client_id": "r1"})
    second = await owner.until_reply_ends()
    await viewer.until(lambda f: f["type"] == "reply.completed")

    shown = await sync(viewer, second["reply_id"])
    hidden = await sync(viewer, first["reply_id"])

    assert shown["type"] == "reply.snapshot" and shown["content"] == "First."
    assert hidden["type"] == "error" and hidden["code"] == "not_found", hidden
    assert not any(f.get("reasoning") for f in viewer.frames)
    assert_only_the_shared_text(viewer.frames)
    # The owner's own socket still gets everything.
    assert any(f.get("reasoning") for f in owner.frames if f["type"] == "reply.delta")
    await viewer.close()
    await owner.close()
