"""A spent day or month allowance is a 429 (a limit), but one that no retry within the next
hours can pass: the answer says so with ``x-should-retry: false``, which the official OpenAI
SDKs (Python and JS) obey, so a script with default settings asks once instead of three times
(DeepSeek's own "out of balance" is a 402, which those SDKs never retry either). A refusal that
does pass after a wait (requests per minute, an upstream 429) keeps its Retry-After and stays
retryable."""

from __future__ import annotations

import httpx
import openai
import pytest

from conversations.models import ModelConfig, User, UserLimits
from tests.test_api_support import make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def _counting_client(base: str, key: str, sent: list[str], **options: int) -> openai.OpenAI:
    http = httpx.Client(event_hooks={"request": [lambda request: sent.append(request.url.path)]})
    # The SDK's defaults otherwise: two retries.
    return openai.OpenAI(base_url=base + "/v1", api_key=key, http_client=http, **options)


def test_a_spent_daily_allowance_is_asked_once(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    UserLimits.objects.create(user=alice, tokens_per_day=100)
    sent: list[str] = []
    client = _counting_client(base, make_key(alice), sent)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "Hi"}], max_tokens=500
        )
    assert refused.value.code == "quota_exceeded"
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert sent == ["/v1/chat/completions"]


def test_a_per_minute_limit_stays_retryable(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    UserLimits.objects.create(user=alice, requests_per_minute=1)
    sent: list[str] = []
    client = _counting_client(base, make_key(alice), sent, max_retries=0)
    messages = [{"role": "user", "content": "[[sim: say=ok]]"}]
    client.chat.completions.create(model="deepseek-chat", messages=messages)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="deepseek-chat", messages=messages)
    assert refused.value.code == "rate_limited"
    assert "x-should-retry" not in refused.value.response.headers
    assert refused.value.response.headers["retry-after"]
    assert len(sent) == 2


@pytest.mark.parametrize("limit", ["requests_per_minute", "concurrent_streams"])
def test_a_limit_of_0_is_asked_once(
    base: str, alice: User, chat_model: ModelConfig, limit: str
) -> None:
    """A limit of 0 allows no call, ever: no Retry-After, and not retried (before: the SDKs
    asked three times, each refused alike)."""
    UserLimits.objects.create(user=alice, **{limit: 0})
    sent: list[str] = []
    client = _counting_client(base, make_key(alice), sent)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "Hi"}]
        )
    assert "ask an administrator" in str(refused.value.message)
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert "retry-after" not in refused.value.response.headers
    assert sent == ["/v1/chat/completions"]
