"""A message sent over the websocket streams its reply in order and is saved."""

from __future__ import annotations

import math
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import quota
from conversations.models import Conversation, Message, UsageRecord, User, UserLimits
from tests.support import open_socket, reply_text

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

ANSWER = (
    "Deploy 4.2 shipped at 10:05. Rollback plan unchanged; the **canary** stays at 5% until noon."
)


async def test_it_streams_the_reply_in_order_and_saves_it(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {"type": "message.send", "client_id": "c1", "content": f"Summarise [[sim: say={ANSWER}]]"}
    )
    created = [
        await socket.until_type("message.created"),
        await socket.until_type("message.created"),
    ]
    assert [f["message"]["role"] for f in created] == ["user", "assistant"]
    assert created[0]["message"]["author"] == "Alice"
    reply_id = created[1]["message"]["id"]
    end = await socket.until_reply_ends()
    assert end["type"] == "reply.completed", end
    assert end["finish_reason"] == "stop"
    assert end["usage"]["completion_tokens"] > 0
    assert reply_text(socket.frames, reply_id) == ANSWER
    deltas = socket.of_type("reply.delta")
    assert len(deltas) >= 2  # streamed, not delivered whole
    assert end["seq"] == deltas[-1]["seq"]
    await socket.close()

    reply = await Message.objects.aget(pk=reply_id)
    assert reply.status == Message.Status.COMPLETE
    assert reply.content == ANSWER
    assert reply.seq == end["seq"]
    assert reply.usage == end["usage"]
    record = await UsageRecord.objects.aget(message=reply)
    assert record.state == UsageRecord.State.SETTLED
    assert record.outcome == "complete"
    assert not record.estimated
    assert record.completion_tokens == end["usage"]["completion_tokens"]
    assert record.prompt_tokens == end["usage"]["prompt_tokens"]
    assert record.cost > 0


async def test_deltas_carry_only_new_text_so_bytes_grow_linearly(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    long_answer = "word " * 400 + "end"
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={long_answer}]]"}
    )
    await socket.until_reply_ends()
    sent = sum(len(f.get("content", "")) for f in socket.of_type("reply.delta"))
    assert sent == len(long_answer)
    await socket.close()


async def test_the_first_reply_names_the_conversation(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    await Conversation.objects.filter(pk=alice_conversation.pk).aupdate(title="")
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c1",
            "content": "How do I rotate the staging TLS certificates?",
        }
    )
    await socket.until_reply_ends()
    updated = await socket.until_type("conversation.updated")
    assert updated["title"]
    await socket.close()
    conversation = await Conversation.objects.aget(pk=alice_conversation.pk)
    assert conversation.title == updated["title"]
    title_call = await UsageRecord.objects.aget(conversation=conversation, purpose="title")
    assert title_call.state == UsageRecord.State.SETTLED
    assert await sync_to_async(UsageRecord.objects.filter(conversation=conversation).count)() == 2


async def test_a_user_whose_output_cap_is_under_the_titles_budget_still_gets_a_model_title(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    """The title call asks for 24 tokens; a user capped at 5 output tokens got the first words
    of the question instead (the call was refused for its max_tokens). It is asked within the
    cap now, so the title is the model's, cut to the cap."""
    await UserLimits.objects.acreate(user=alice, max_output_tokens=5)
    await Conversation.objects.filter(pk=alice_conversation.pk).aupdate(title="")
    socket = await open_socket(alice, alice_conversation)
    # The title call sends the first question too, so the simulator says the same to it.
    words = "Quarterly offsite planning for the platform team in the spring"
    await socket.send(
        {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={words}]] Offsite"}
    )
    assert (await socket.until_reply_ends())["type"] == "reply.completed"
    updated = await socket.until_type("conversation.updated")
    await socket.close()
    title_call = await UsageRecord.objects.aget(conversation=alice_conversation, purpose="title")
    assert (title_call.state, title_call.outcome) == (UsageRecord.State.SETTLED, "complete")
    assert 0 < title_call.completion_tokens <= 5
    assert updated["title"] != "Offsite"  # not the fallback
    assert updated["title"].startswith("Quarterly offsite") and words.startswith(updated["title"])


async def test_a_refused_title_call_falls_back_to_the_first_words(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    # A day's allowance that holds the reply (cut at 20 tokens) and nothing more: the title call
    # is refused and costs nothing. (A title call is not one of the user's requests per minute.)
    text = "Rotate the staging certificates"
    prompt = quota.estimate_prompt_tokens([{"role": "user", "content": text}])
    reply = math.ceil(prompt * quota.PROMPT_PADDING) + quota.PROMPT_SLACK + 20
    await UserLimits.objects.acreate(user=alice, tokens_per_day=reply)
    await Conversation.objects.filter(pk=alice_conversation.pk).aupdate(
        title="", params={"max_tokens": 20}
    )
    socket = await open_socket(alice, alice_conversation)
    await socket.send({"type": "message.send", "client_id": "c1", "content": text})
    assert (await socket.until_reply_ends())["type"] == "reply.completed"
    updated = await socket.until_type("conversation.updated")
    await socket.close()
    assert updated["title"] == "Rotate the staging certificates"
    purposes = [
        r.purpose async for r in UsageRecord.objects.filter(conversation=alice_conversation)
    ]
    assert purposes == ["chat"]
