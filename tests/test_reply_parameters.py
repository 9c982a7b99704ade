"""Parameters are checked against the reference's ranges and the model: nothing goes upstream."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conversations.models import Conversation, Message, ModelConfig, UsageRecord, User
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.01}, "top_p"),
        ({"frequency_penalty": -2.1}, "frequency_penalty"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 8193}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"response_format": {"type": "xml"}}, "response_format"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"tools": [{"type": "retrieval"}]}, "tools"),
        ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools"),
        (
            {"tools": [{"type": "function", "function": {"name": f"f{i}"}} for i in range(129)]},
            "tools",
        ),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"stop": [""]}, "stop"),
        ({"seed": 1}, "seed"),
    ],
)
async def test_a_bad_parameter_is_named_and_nothing_is_sent(
    alice: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
    params: dict[str, Any],
    param: str,
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {"type": "message.send", "client_id": "c1", "content": "hello", "params": params}
    )
    error = await socket.until_type("error")
    await socket.close()
    assert (error["code"], error["param"]) == ("invalid_parameter", param)
    assert await Message.objects.acount() == 0
    assert await UsageRecord.objects.acount() == 0


async def test_capabilities_of_the_model_are_checked(
    alice: User, reasoner_model: ModelConfig, simulator: str, generation_service: Any
) -> None:
    conversation = await Conversation.objects.acreate(owner=alice, model=reasoner_model, title="t")
    socket = await open_socket(alice, conversation)
    await socket.send(
        {"type": "message.send", "client_id": "c1", "content": "hi", "params": {"logprobs": True}}
    )
    assert (await socket.until_type("error"))["param"] == "logprobs"
    tools = [{"type": "function", "function": {"name": "lookup"}}]
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c2",
            "content": "hi",
            "params": {"tools": tools, "tool_choice": "required"},
        }
    )
    assert (await socket.until_type("error"))["param"] == "tool_choice"
    await socket.close()
    assert await UsageRecord.objects.acount() == 0


async def test_json_mode_refuses_a_prompt_that_never_mentions_json(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    json_mode = {"response_format": {"type": "json_object"}}
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c1",
            "content": "List three fruits",
            "params": json_mode,
        }
    )
    error = await socket.until_type("error")
    assert (error["code"], error["param"]) == ("json_prompt_missing", "response_format")
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c2",
            "content": "List three fruits as JSON",
            "params": json_mode,
        }
    )
    end = await socket.until_reply_ends()
    await socket.close()
    assert end["type"] == "reply.completed"
    reply = await Message.objects.aget(pk=end["reply_id"])
    import json

    json.loads(reply.content)


async def test_good_parameters_reach_the_reply_and_logprobs_stream(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    params = {"temperature": 0.2, "max_tokens": 64, "logprobs": True, "top_logprobs": 2}
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c1",
            "content": "[[sim: say=Two words.]]",
            "params": params,
        }
    )
    end = await socket.until_reply_ends()
    await socket.close()
    assert end["type"] == "reply.completed"
    logprobs = [item for f in socket.of_type("reply.delta") for item in f.get("logprobs", [])]
    assert logprobs and len(logprobs[0]["top_logprobs"]) == 2
    reply = await Message.objects.aget(pk=end["reply_id"])
    assert reply.params == params
    assert reply.logprobs and len(reply.logprobs["content"]) == len(logprobs)


async def test_each_delta_carries_the_logprobs_of_its_own_text(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    """The provider sends a piece of text and its logprobs in one chunk: the delta that
    carries the text carries them too. Before, the first delta went out at once with the text
    alone, and every later delta carried the logprobs of the text before it (one more delta,
    logprobs only, closed the reply), so a page showing confidence as text arrived showed each
    piece without its own, and a share link's viewer was sent a delta with nothing in it."""
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c1",
            "content": "[[sim: say=One two three four five six seven eight nine ten.]]",
            "params": {"logprobs": True},
        }
    )
    end = await socket.until_reply_ends()
    await socket.close()
    assert end["type"] == "reply.completed"
    deltas = socket.of_type("reply.delta")
    assert deltas
    for delta in deltas:
        tokens = "".join(item["token"] for item in delta.get("logprobs", []))
        assert tokens == delta.get("content", ""), delta


@pytest.mark.parametrize("withheld", ["none", "empty"])
async def test_a_reply_whose_logprobs_never_come_still_streams_and_is_checkpointed(
    alice: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
    withheld: str,
) -> None:
    """A delta waits for the logprobs of its text, which come in the same chunk; an upstream
    may send none though they were asked for (an OpenAI-compatible provider that ignores the
    parameter, or one sending empty lists). Before, nothing was then published until the
    reply's end ("Waiting for the model..." all along), and with no delta no checkpoint was
    written, so a worker lost mid-reply lost all of its text. Its text now streams as any
    reply's does, and is checkpointed."""
    words = " ".join(f"w{i}" for i in range(120))
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c1",
            "content": f"[[sim: logprobs={withheld} tokens_per_s=40 say={words}]]",
            "params": {"logprobs": True},
        }
    )
    reply_id = (await socket.until_type("reply.started"))["reply_id"]
    first = await socket.until_type("reply.delta")
    assert 0 < len(first.get("content", "")) < len(words) / 4, first
    reading = asyncio.ensure_future(socket.until_reply_ends())
    checkpointed: set[str] = set()
    while not reading.done():
        row = await Message.objects.only("status", "content").aget(pk=reply_id)
        if row.status == Message.Status.STREAMING and row.content:
            checkpointed.add(row.content)
        await asyncio.sleep(0.05)
    end = await reading
    await socket.close()
    assert end["type"] == "reply.completed"
    assert all(words.startswith(text) for text in checkpointed), checkpointed
    assert checkpointed - {words}, "no checkpoint before the end of the text"
    deltas = socket.of_type("reply.delta")
    assert "".join(delta.get("content", "") for delta in deltas) == words
    assert len([delta for delta in deltas if delta.get("content")]) > 3
    assert not any(delta.get("logprobs") for delta in deltas)
    reply = await Message.objects.aget(pk=reply_id)
    assert reply.content == words


@pytest.mark.parametrize("choice", ["auto", "none"])
async def test_a_tool_choice_on_a_model_without_tools_is_refused_by_name(
    alice: User, chat_model: ModelConfig, simulator: str, generation_service: Any, choice: str
) -> None:
    # Without tools, "auto" and "none" were taken, stored and sent upstream, while tools
    # themselves were refused for this model.
    chat_model.supports_tools = False
    await chat_model.asave(update_fields=["supports_tools"])
    conversation = await Conversation.objects.acreate(owner=alice, model=chat_model, title="t")
    socket = await open_socket(alice, conversation)
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c1",
            "content": "hi",
            "params": {"tool_choice": choice},
        }
    )
    error = await socket.until_type("error")
    await socket.close()
    assert (error["code"], error["param"]) == ("invalid_parameter", "tool_choice")
    assert "does not support tools" in error["message"]
    assert await UsageRecord.objects.acount() == 0
