"""A client id names one request: sent again it is the same request (its rows, marked
duplicate); reused for another message it is refused naming ``client_id``, instead of being
answered with the first request's rows while its own text is silently dropped."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import Conversation, Message, UsageRecord, User
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def test_a_client_id_reused_for_other_text_or_another_action_is_refused(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    first = {"type": "message.send", "client_id": "c1", "content": "[[sim: say=Hello.]]"}
    await socket.send(first)
    question = (await socket.until_type("message.created"))["message"]["id"]
    reply = (await socket.until_reply_ends())["reply_id"]

    refused = []
    for frame in (
        {"type": "message.send", "client_id": "c1", "content": "Something else entirely"},
        {"type": "message.edit", "message_id": question, "content": "Other", "client_id": "c1"},
        {"type": "reply.regenerate", "reply_id": reply, "client_id": "c1"},
    ):
        await socket.send(frame)
        error = await socket.until_type("error")
        refused.append((error["code"], error.get("param"), error.get("client_id")))
    assert refused == [("conflict", "client_id", "c1")] * 3

    # Nothing was stored or charged for them, and a true retry is still the first request.
    assert await Message.objects.acount() == 2
    assert await UsageRecord.objects.acount() == 1
    await socket.send(first)
    duplicate = await socket.until_type("message.created")
    await socket.close()
    assert duplicate["duplicate"] is True and duplicate["message"]["id"] == question
    assert await Message.objects.acount() == 2


async def test_a_tool_answer_under_a_used_client_id_must_repeat_the_answer(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    calls = [
        {"id": f"call_{name}", "type": "function", "function": {"name": name, "arguments": "{}"}}
        for name in ("weather", "time")
    ]
    question = await Message.objects.acreate(
        conversation=alice_conversation, role="user", author=alice, content="Weather and time?"
    )
    reply = await Message.objects.acreate(
        conversation=alice_conversation,
        parent=question,
        role="assistant",
        status="complete",
        finish_reason="tool_calls",
        tool_calls=calls,
    )
    socket = await open_socket(alice, alice_conversation)
    answer = {
        "type": "tool.answer",
        "reply_id": str(reply.pk),
        "tool_call_id": "call_weather",
        "content": "Sunny",
        "client_id": "t1",
    }
    await socket.send(answer)
    stored = (await socket.until_type("message.created"))["message"]
    # The same id for the other call's answer, or for other text: refused, nothing stored.
    for other in ({"tool_call_id": "call_time", "content": "Noon"}, {"content": "Rain"}):
        await socket.send({**answer, **other})
        error = await socket.until_type("error")
        assert (error["code"], error.get("param")) == ("conflict", "client_id")
    await socket.send(answer)
    duplicate = await socket.until_type("message.created")
    await socket.close()
    assert duplicate["duplicate"] is True and duplicate["message"]["id"] == stored["id"]
    assert await Message.objects.filter(role="tool").acount() == 1


async def test_a_regenerate_under_a_used_client_id_must_ask_for_the_same_answer(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    replies = []
    for client_id in ("q1", "q2"):
        await socket.send(
            {"type": "message.send", "client_id": client_id, "content": "[[sim: say=Hi.]]"}
        )
        replies.append((await socket.until_reply_ends())["reply_id"])
    first_reply, second_reply = replies
    regenerate = {
        "type": "reply.regenerate",
        "reply_id": first_reply,
        "client_id": "g1",
        "params": {"temperature": 0.5},
    }
    await socket.send(regenerate)
    created = (await socket.until_type("message.created"))["message"]
    await socket.until_reply_ends()

    # The same id to regenerate another reply (another question), or with other parameters:
    # refused, nothing stored or charged.
    for other in (
        {"reply_id": second_reply},
        {"params": {"temperature": 0.7}},
        {"params": None},
    ):
        await socket.send({k: v for k, v in {**regenerate, **other}.items() if v is not None})
        error = await socket.until_type("error")
        assert (error["code"], error.get("param"), error.get("client_id")) == (
            "conflict",
            "client_id",
            "g1",
        ), other
    assert await Message.objects.acount() == 5
    assert await UsageRecord.objects.filter(purpose="chat").acount() == 3

    # A true retry is the first request; so is one naming the new reply (the same question).
    for retry in (regenerate, {**regenerate, "reply_id": created["id"]}):
        await socket.send(retry)
        duplicate = await socket.until_type("message.created")
        assert duplicate["duplicate"] is True and duplicate["message"]["id"] == created["id"]
    await socket.close()
    assert await Message.objects.acount() == 5
    assert await UsageRecord.objects.filter(purpose="chat").acount() == 3


async def test_an_edit_under_a_used_client_id_must_edit_in_the_same_place(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    questions = []
    for client_id in ("q1", "q2"):
        await socket.send(
            {"type": "message.send", "client_id": client_id, "content": "[[sim: say=Hi.]]"}
        )
        questions.append((await socket.until_type("message.created"))["message"]["id"])
        await socket.until_reply_ends()
    edit = {
        "type": "message.edit",
        "message_id": questions[0],
        "content": "[[sim: say=Edited.]]",
        "client_id": "e1",
    }
    await socket.send(edit)
    edited = (await socket.until_type("message.created"))["message"]
    await socket.until_reply_ends()

    # The same id and text to edit the other question: refused, nothing stored.
    await socket.send({**edit, "message_id": questions[1]})
    error = await socket.until_type("error")
    assert (error["code"], error.get("param")) == ("conflict", "client_id")
    assert await Message.objects.acount() == 6

    await socket.send(edit)
    duplicate = await socket.until_type("message.created")
    await socket.close()
    assert duplicate["duplicate"] is True and duplicate["message"]["id"] == edited["id"]
    assert await Message.objects.acount() == 6


async def test_a_message_under_a_used_client_id_must_ask_with_the_same_parameters(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    send = {
        "type": "message.send",
        "client_id": "s1",
        "content": "[[sim: say=Hi.]]",
        "params": {"temperature": 0.5},
    }
    await socket.send(send)
    question = (await socket.until_type("message.created"))["message"]["id"]
    await socket.until_reply_ends()
    edit = {
        "type": "message.edit",
        "message_id": question,
        "content": "[[sim: say=Edited.]]",
        "client_id": "e1",
        "params": {"max_tokens": 100},
    }
    await socket.send(edit)
    edited = (await socket.until_type("message.created"))["message"]["id"]
    await socket.until_reply_ends()

    # The same id and text with other parameters (or none): another request, refused, where
    # it used to be answered as the first one while its parameters were dropped.
    for frame, other in (
        (send, {"params": {"temperature": 0.7}}),
        (send, {"params": None}),
        (edit, {"params": {"max_tokens": 200}}),
        (edit, {"params": None}),
    ):
        await socket.send({k: v for k, v in {**frame, **other}.items() if v is not None})
        error = await socket.until_type("error")
        assert (error["code"], error.get("param"), error.get("client_id")) == (
            "conflict",
            "client_id",
            frame["client_id"],
        ), other
    assert await Message.objects.acount() == 4
    assert await UsageRecord.objects.filter(purpose="chat").acount() == 2

    # True retries are still the first requests (each answered with its message and reply).
    for frame, created in ((send, question), (edit, edited)):
        await socket.send(frame)
        duplicate = await socket.until_type("message.created")
        assert duplicate["duplicate"] is True and duplicate["message"]["id"] == created
        reply = await socket.until_type("message.created")
        assert reply["duplicate"] is True and reply["message"]["role"] == "assistant"
    await socket.close()
    assert await Message.objects.acount() == 4
