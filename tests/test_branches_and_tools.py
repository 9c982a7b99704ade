"""Regenerate makes a sibling reply, edit makes a sibling question, tool answers continue."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conversations.models import Conversation, Message, User
from tests.support import Socket, open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def ask(
    socket: Socket, client_id: str, content: str, **extra: Any
) -> tuple[str, str, dict[str, Any]]:
    await socket.send({"type": "message.send", "client_id": client_id, "content": content, **extra})
    created = [
        await socket.until_type("message.created"),
        await socket.until_type("message.created"),
    ]
    end = await socket.until_reply_ends()
    return created[0]["message"]["id"], created[1]["message"]["id"], end


async def answer_tool(
    socket: Socket, reply_id: str, tool_call_id: str, content: str, *, client_id: str
) -> None:
    await socket.send(
        {
            "type": "tool.answer",
            "reply_id": reply_id,
            "tool_call_id": tool_call_id,
            "content": content,
            "client_id": client_id,
        }
    )


async def test_regenerate_adds_a_sibling_reply_under_the_same_question(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    question, first_reply, _ = await ask(socket, "c1", "Explain TLS session resumption")
    await socket.send({"type": "reply.regenerate", "reply_id": first_reply, "client_id": "r1"})
    created = await socket.until_type("message.created")
    end = await socket.until_reply_ends()
    await socket.close()
    assert end["type"] == "reply.completed"
    second = await Message.objects.aget(pk=created["message"]["id"])
    assert str(second.parent_id) == question
    assert second.pk != first_reply and second.role == "assistant" and second.content
    assert await Message.objects.filter(parent_id=question).acount() == 2


async def test_edit_makes_a_new_branch_and_the_reply_sees_only_that_branch(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    _, first_r, _ = await ask(socket, "c1", "First question")
    second_q, _, _ = await ask(socket, "c2", "Second question", parent_id=first_r)
    await socket.send(
        {
            "type": "message.edit",
            "message_id": second_q,
            "content": "Second question, edited",
            "client_id": "e1",
        }
    )
    edited = await socket.until_type("message.created")
    await socket.until_reply_ends()
    await socket.close()
    new_q = await Message.objects.aget(pk=edited["message"]["id"])
    assert str(new_q.parent_id) == first_r
    assert new_q.content == "Second question, edited"
    assert await Message.objects.filter(parent_id=first_r, role="user").acount() == 2


async def test_a_tool_call_is_answered_and_the_reply_continues(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    tools = [
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
    socket = await open_socket(alice, alice_conversation)
    _, reply_id, end = await ask(
        socket, "c1", "What is the status of OPS-17? Use lookup_ticket.", params={"tools": tools}
    )
    assert end["type"] == "reply.completed" and end["finish_reason"] == "tool_calls", end
    fragments = [t for f in socket.of_type("reply.delta") for t in f.get("tool_calls", [])]
    assert fragments[0]["name"] == "lookup_ticket"
    reply = await Message.objects.aget(pk=reply_id)
    [call] = reply.tool_calls
    assert json.loads(call["function"]["arguments"])["key"]
    # A result over the length a message may have is refused saying so.
    await answer_tool(socket, reply_id, call["id"], "x" * 100_001, client_id="t0")
    refused = await socket.until_type("error")
    assert refused["code"] == "invalid_parameter" and refused.get("param") == "content"
    assert "longer than 100000 characters" in refused["message"], refused
    await answer_tool(socket, reply_id, call["id"], '{"status": "in review"}', client_id="t1")
    tool_message = await socket.until_type("message.created")
    assert tool_message["message"]["role"] == "tool"
    follow_up = await socket.until_type("message.created")
    final = await socket.until_reply_ends()
    await socket.close()
    assert final["type"] == "reply.completed" and final["finish_reason"] == "stop"
    answer = await Message.objects.aget(pk=follow_up["message"]["id"])
    assert str(answer.parent_id) == tool_message["message"]["id"]
    assert answer.content


@pytest.mark.parametrize(
    "forced", ["required", {"type": "function", "function": {"name": "lookup_ticket"}}]
)
async def test_a_forced_tool_choice_lets_the_reply_answer_once_its_calls_are_answered(
    alice: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
    forced: Any,
) -> None:
    # The upstream, as DeepSeek's, calls a tool whenever tool_choice forces one, tool results
    # or not: kept forced, the reply after the results would call the tool again, for ever.
    tools = [{"type": "function", "function": {"name": "lookup_ticket", "parameters": {}}}]
    socket = await open_socket(alice, alice_conversation)
    _, reply_id, end = await ask(
        socket, "c1", "How is OPS-17?", params={"tools": tools, "tool_choice": forced}
    )
    assert end["finish_reason"] == "tool_calls", end
    [call] = (await Message.objects.aget(pk=reply_id)).tool_calls
    await answer_tool(socket, reply_id, call["id"], '{"status": "in review"}', client_id="t1")
    await socket.until_type("message.created")
    follow_up = await socket.until_type("message.created")
    final = await socket.until_reply_ends()
    await socket.close()
    assert final["type"] == "reply.completed" and final["finish_reason"] == "stop", final
    answer = await Message.objects.aget(pk=follow_up["message"]["id"])
    assert answer.content and not answer.tool_calls
    assert answer.params["tool_choice"] == "auto"
    assert answer.params["tools"] == tools
    # The question's own reply keeps what was asked: regenerated, it calls the tool again.
    assert (await Message.objects.aget(pk=reply_id)).params["tool_choice"] == forced

    # The answer to the results, regenerated, answers in words again (the conversation's
    # settings still force a call; the new reply goes on with the results as the first did).
    await Conversation.objects.filter(pk=alice_conversation.pk).aupdate(
        params={"tools": tools, "tool_choice": forced}
    )
    socket = await open_socket(alice, alice_conversation)
    await socket.send({"type": "reply.regenerate", "reply_id": str(answer.pk), "client_id": "r1"})
    again = await socket.until_type("message.created")
    final = await socket.until_reply_ends()
    await socket.close()
    assert final["type"] == "reply.completed" and final["finish_reason"] == "stop", final
    regenerated = await Message.objects.aget(pk=again["message"]["id"])
    assert regenerated.parent_id == answer.parent_id and not regenerated.tool_calls
    assert regenerated.params["tool_choice"] == "auto"
