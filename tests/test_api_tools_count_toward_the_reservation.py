"""The tools a call offers are part of its prompt (the provider bills them as prompt tokens), so
admission reserves them too: a call whose tool definitions alone exceed what is left of the
day's allowance is refused before it is made, not charged far past the limit afterwards."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import ModelConfig, UsageRecord, User, UserLimits
from tests.test_api_support import assert_envelope, bearer, chat, make_key, settled_record

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

LIMIT = 3_000


def tools(count: int) -> list[dict[str, Any]]:
    # About 600 prompt tokens each (the provider counts the descriptions and schemas).
    return [
        {
            "type": "function",
            "function": {
                "name": f"lookup_{i}",
                "description": "Looks a ticket up in the tracker. " * 60,
                "parameters": {"type": "object", "properties": {"key": {"type": "string"}}},
            },
        }
        for i in range(count)
    ]


@pytest.fixture
def headers(alice: User, chat_model: ModelConfig) -> dict[str, str]:
    UserLimits.objects.create(user=alice, tokens_per_day=LIMIT)
    return bearer(make_key(alice))


@pytest.mark.parametrize("stream", [False, True])
def test_tools_larger_than_the_allowance_are_refused_before_the_call(
    base: str, headers: dict[str, str], stream: bool
) -> None:
    messages = [{"role": "user", "content": "Status of OPS-17? [[sim: say=In review.]]"}]
    response = chat(base, headers, messages=messages, tools=tools(20), max_tokens=50, stream=stream)
    error = assert_envelope(response, 429, "rate_limit_error")
    assert error["code"] == "quota_exceeded"
    assert "daily limit of 3,000 tokens" in error["message"]
    assert not UsageRecord.objects.exists()


def test_tools_that_fit_are_admitted_and_billed_as_prompt(
    base: str, headers: dict[str, str]
) -> None:
    messages = [{"role": "user", "content": "Status of OPS-17? [[sim: say=In review.]]"}]
    response = chat(base, headers, messages=messages, tools=tools(2), max_tokens=50)
    assert response.status_code == 200, response.text
    billed = response.json()["usage"]["prompt_tokens"]
    record = settled_record()
    assert record.prompt_tokens == billed > 1000
    assert record.prompt_tokens + record.completion_tokens <= LIMIT
