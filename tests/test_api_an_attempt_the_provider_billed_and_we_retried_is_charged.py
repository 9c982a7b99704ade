"""An answer cut short for want of capacity (``finish_reason: insufficient_system_resource``)
is not an answer, and the call is tried again (``deepseek-api.md`` §11); but the provider
billed that attempt. Its usage is added to the call's: in the ledger and in the usage the
client reads. Before, only the last attempt was charged, and a retried call cost the provider
more than it took from the user's limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests.test_api_support import all_settled, bearer, chat, make_key, sse_events

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

# The simulator counts a directive's failures by its text: one text per test.
CUT_ONCE = "Plan the rollout. [[sim: finish=insufficient_system_resource fault_times=1 {}]]"


@pytest.fixture
def headers(alice: User, chat_model: ModelConfig) -> dict[str, str]:
    return bearer(make_key(alice))


def usage_of(response: Any, stream: bool) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    if not stream:
        return dict(response.json()["usage"])
    data, _ = sse_events(response.text)
    assert data[-1] == "[DONE]"
    return dict(json.loads(data[-2])["usage"])


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
def test_the_billed_attempt_before_a_retry_is_charged_with_the_call(
    base: str, headers: dict[str, str], alice: User, stream: bool
) -> None:
    # Streamed, a failure after output is kept as it is (never retried): the attempt cut
    # short here has no output yet (an empty answer), and is billed its prompt.
    content = CUT_ONCE.format("say=" if stream else "")
    body: dict[str, Any] = {"messages": [{"role": "user", "content": content}], "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    retried = usage_of(chat(base, headers, body), stream)
    # The same text again: its one failure is spent, so this call is one attempt.
    once = usage_of(chat(base, headers, body), stream)

    assert retried["prompt_tokens"] == 2 * once["prompt_tokens"]
    if stream:
        assert retried["completion_tokens"] == once["completion_tokens"] == 0
    else:
        assert retried["completion_tokens"] > once["completion_tokens"]
    assert retried["total_tokens"] == retried["prompt_tokens"] + retried["completion_tokens"]
    all_settled(user=alice)
    first, second = UsageRecord.objects.filter(user=alice).order_by("pk")
    assert (first.prompt_tokens, first.completion_tokens) == (
        retried["prompt_tokens"],
        retried["completion_tokens"],
    )
    assert first.cache_hit_tokens + first.cache_miss_tokens == first.prompt_tokens
    assert (second.prompt_tokens, second.completion_tokens) == (
        once["prompt_tokens"],
        once["completion_tokens"],
    )
    assert not first.estimated
