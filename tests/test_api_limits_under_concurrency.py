"""Many concurrent API calls near a user's token limit: the ones admitted fit within it, the
rest get DeepSeek's 429 envelope, and the day's total never overshoots the limit."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from conversations.models import ModelConfig, UsageAccount, UsageRecord, User, UserLimits
from tests.test_api_support import all_settled, bearer, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

LIMIT = 1_000
MAX_TOKENS = 100
CALLS = 30


async def _fire(base: str, key: str) -> list[httpx.Response]:
    answer = " ".join(f"w{i}" for i in range(MAX_TOKENS))
    body = {
        "model": "deepseek-chat",
        "max_tokens": MAX_TOKENS,
        "messages": [
            {"role": "user", "content": f"[[sim: tokens_per_s=200]][[sim: say={answer}]]"}
        ],
    }
    async with httpx.AsyncClient(timeout=60) as client:
        return await asyncio.gather(
            *[
                client.post(base + "/v1/chat/completions", headers=bearer(key), json=body)
                for _ in range(CALLS)
            ]
        )


def test_concurrent_calls_never_overshoot_the_daily_limit(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    UserLimits.objects.create(user=alice, tokens_per_day=LIMIT)
    responses = asyncio.run(_fire(base, make_key(alice)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) == {200, 429}, statuses
    refused = [r.json()["error"] for r in responses if r.status_code == 429]
    assert all(e["type"] == "rate_limit_error" and e["code"] == "quota_exceeded" for e in refused)
    assert all("daily limit" in e["message"] for e in refused)
    all_settled(user=alice)  # each just after its answer's last byte
    admitted = UsageRecord.objects.filter(user=alice)
    assert admitted.count() == statuses.count(200)
    spent = sum(r.total_tokens for r in admitted)
    assert spent <= LIMIT
    assert UsageAccount.objects.get(user=alice).day_used == spent
