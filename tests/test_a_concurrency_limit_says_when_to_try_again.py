"""Too many replies running at once is a refusal a short wait passes (one of them ends): the
API's 429 ``concurrent_streams_limit`` carries ``Retry-After`` as the per-minute limit's does,
and the chat's ``error`` frame the same wait as ``retry_after``. It had neither: a client
honouring Retry-After had nothing to go by."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async

from conversations import quota
from conversations.models import Conversation, ModelConfig, UsageAccount, User, UserLimits
from tests.support import open_socket, usage_account
from tests.test_api_support import make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def _one_reply_running(user: User) -> None:
    """``user`` may have one reply at once, and has one running (its slot taken)."""
    UserLimits.objects.create(user=user, concurrent_streams=1)
    usage_account(user)
    UsageAccount.objects.filter(user=user).update(streams=1)


def test_the_apis_refusal_has_retry_after(base: str, alice: User, chat_model: ModelConfig) -> None:
    _one_reply_running(alice)
    refused = httpx.post(
        f"{base}/v1/chat/completions",
        headers={"Authorization": f"Bearer {make_key(alice)}"},
        json={"model": "deepseek-chat", "messages": [{"role": "user", "content": "Hi"}]},
        timeout=30,
    )
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "concurrent_streams_limit"
    assert refused.headers["retry-after"] == str(quota.STREAMS_RETRY_AFTER_SECONDS)
    assert "x-should-retry" not in refused.headers


async def test_the_chats_refusal_has_the_same_wait(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    await sync_to_async(_one_reply_running)(alice)
    socket = await open_socket(alice, alice_conversation)
    await socket.send({"type": "message.send", "client_id": "c1", "content": "Hi"})
    error = await socket.until_type("error")
    await socket.close()
    assert error["code"] == "concurrent_streams_limit"
    assert error["retry_after"] == quota.STREAMS_RETRY_AFTER_SECONDS
