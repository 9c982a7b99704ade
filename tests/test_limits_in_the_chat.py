"""The chat goes through the same limits: refusals arrive as error frames; a running reply
finishes when its user is suspended, and the next is refused."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import Conversation, ModelConfig, Policy, UsageRecord, User, UserLimits
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]
LONG = " ".join(f"w{i}" for i in range(120))


async def test_a_disallowed_model_is_refused_over_the_websocket(
    alice: User,
    alice_conversation: Conversation,
    reasoner_model: ModelConfig,
    simulator: str,
    generation_service: Any,
) -> None:
    await Policy.objects.all().adelete()
    policy = await Policy.objects.acreate(name="reasoner only", is_default=True, all_models=False)
    await policy.allowed_models.aset([reasoner_model])
    socket = await open_socket(alice, alice_conversation)
    await socket.send({"type": "message.send", "client_id": "c1", "content": "hello"})
    error = await socket.until_type("error")
    await socket.close()
    assert error["code"] == "model_not_allowed"
    assert await UsageRecord.objects.acount() == 0


async def test_the_daily_limit_refuses_with_when_it_resets(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    # The first request reserves 227 tokens (padded prompt + max_tokens), the second more.
    await UserLimits.objects.acreate(user=alice, tokens_per_day=230, max_output_tokens=200)
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c1",
            "content": "[[sim: say=Short.]]",
            "params": {"max_tokens": 200},
        }
    )
    assert (await socket.until_reply_ends())["type"] == "reply.completed"
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c2",
            "content": "again",
            "params": {"max_tokens": 200},
        }
    )
    error = await socket.until_type("error")
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c3",
            "content": "too much",
            "params": {"max_tokens": 201},
        }
    )
    capped = await socket.until_type("error")
    await socket.close()
    assert (
        error["code"] == "quota_exceeded"
        and error["period"] == "day"
        and "resets at" in error["message"]
    )
    assert (
        capped["code"] == "invalid_parameter"
        and capped["param"] == "max_tokens"
        and "200" in capped["message"]
    )


async def test_suspension_lets_the_running_reply_finish_and_refuses_the_next(
    alice: User, alice_conversation: Conversation, slow_simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={LONG}]]"}
    )
    await socket.until_type("reply.delta")
    await UserLimits.objects.aupdate_or_create(user=alice, defaults={"suspended": True})
    end = await socket.until_reply_ends()
    assert end["type"] == "reply.completed"
    await socket.send({"type": "message.send", "client_id": "c2", "content": "more"})
    error = await socket.until_type("error")
    await socket.close()
    assert error["code"] == "account_suspended"
