"""Each upstream failure leaves the reply in the right state with a code a user can act on."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import Conversation, Message, UsageRecord, User
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]


@pytest.mark.parametrize(
    ("directive", "status", "code"),
    [
        ("fault=401", "failed", "upstream_auth_failed"),
        ("fault=402", "failed", "upstream_insufficient_balance"),
        ("fault=422", "failed", "invalid_request"),
        ("fault=400", "failed", "invalid_request"),
        ("fault=429", "failed", "rate_limited"),
        ("fault=500", "failed", "upstream_server_error"),
        ("fault=503", "failed", "upstream_overloaded"),
        ("drop_after=4", "interrupted", "response_truncated"),
        ("finish=insufficient_system_resource", "interrupted", "insufficient_system_resource"),
    ],
)
async def test_an_upstream_fault_sets_the_reply_status_and_code(
    alice: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
    directive: str,
    status: str,
    code: str,
) -> None:
    generation_service.client.config = fast_retries(generation_service.client.config)
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {"type": "message.send", "client_id": "c1", "content": f"Tell me [[sim: {directive}]]"}
    )
    end = await socket.until_reply_ends(timeout=60)
    await socket.close()
    assert end["type"] == "reply.failed", end
    assert (end["status"], end["code"]) == (status, code)
    assert "sk-" not in end["message"]
    reply = await Message.objects.aget(pk=end["reply_id"])
    assert (reply.status, reply.error_code) == (status, code)
    if status == "interrupted":
        assert reply.content  # the partial text is kept
    record = await UsageRecord.objects.aget(message=reply)
    assert record.state == UsageRecord.State.SETTLED and record.reserved_tokens == 0
    if status == "failed":
        # Refused or never answered: the provider bills nothing, nor does our ledger.
        assert (record.total_tokens, record.cost, record.estimated) == (0, 0, False)
    else:
        assert record.total_tokens > 0


async def test_a_transient_failure_before_output_is_retried_invisibly(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    generation_service.client.config = fast_retries(generation_service.client.config)
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c1",
            "content": "[[sim: fault=503 fault_times=2 say=Recovered.]]",
        }
    )
    end = await socket.until_reply_ends(timeout=60)
    await socket.close()
    assert end["type"] == "reply.completed"
    reply = await Message.objects.aget(pk=end["reply_id"])
    assert reply.content == "Recovered."


async def test_a_reply_cut_at_max_tokens_is_complete_but_marked_truncated(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {"type": "message.send", "client_id": "c1", "content": "Write a lot [[sim: finish=length]]"}
    )
    end = await socket.until_reply_ends()
    await socket.close()
    assert end["type"] == "reply.completed" and end["finish_reason"] == "length"


def fast_retries(config: Any) -> Any:
    from dataclasses import replace

    return replace(config, backoff_base_s=0.01, backoff_max_s=0.05)
