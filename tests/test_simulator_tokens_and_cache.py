from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulator import count_tokens
from simulator.testing import running_simulator

AUTH = {"Authorization": "Bearer sk-alice"}


def test_count_tokens_uses_the_published_ratios() -> None:
    assert count_tokens("") == 0
    assert count_tokens("a") == 1
    assert count_tokens("x" * 10) == 3
    assert count_tokens("x" * 100) == 30
    assert count_tokens("你好世界你好世界你好") == 6
    assert count_tokens("ab你好") == 2  # 0.6 + 1.2 = 1.8 → 2


@pytest.fixture()
def url() -> Iterator[str]:
    with running_simulator() as base:
        yield base


def post(url: str, messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/chat/completions",
        headers=AUTH,
        json={
            "model": "deepseek-flash",
            "thinking": {"type": "disabled"},
            "messages": messages,
            **extra,
        },
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_prompt_tokens_sum_the_messages(url: str) -> None:
    system = "You are the #ops channel helper."
    user = "Summarise today's deploy notes in two lines."
    body = post(url, [{"role": "system", "content": system}, {"role": "user", "content": user}])
    assert body["usage"]["prompt_tokens"] == count_tokens(system) + count_tokens(user)


def test_completion_tokens_track_the_reply_length(url: str) -> None:
    body = post(url, [{"role": "user", "content": "How do retries work?"}])
    content = body["choices"][0]["message"]["content"]
    tokens = body["usage"]["completion_tokens"]
    assert 0.6 * count_tokens(content) <= tokens <= 1.6 * count_tokens(content)


def test_a_repeated_conversation_is_a_full_cache_hit(url: str) -> None:
    messages = [{"role": "user", "content": "Explain our on-call rotation in detail please"}]
    first = post(url, messages)["usage"]
    second = post(url, messages)["usage"]
    assert first["prompt_cache_hit_tokens"] == 0
    assert second["prompt_cache_hit_tokens"] == second["prompt_tokens"]
    assert second["prompt_cache_miss_tokens"] == 0
    assert second["prompt_tokens_details"]["cached_tokens"] == second["prompt_tokens"]


def test_the_next_turn_hits_the_previous_turn_including_the_reply(url: str) -> None:
    question = "Explain our on-call rotation in detail please"
    first = post(url, [{"role": "user", "content": question}])
    reply = first["choices"][0]["message"]["content"]
    follow_up = "And who covers weekends?"
    messages = [
        {"role": "user", "content": question},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": follow_up},
    ]
    usage = post(url, messages)["usage"]
    assert usage["prompt_cache_hit_tokens"] == count_tokens(question) + count_tokens(reply)
    assert usage["prompt_cache_miss_tokens"] == count_tokens(follow_up)


def test_cache_hits_are_separate_per_user_id_and_key(url: str) -> None:
    messages = [{"role": "user", "content": "A question long enough to be cached"}]
    post(url, messages, user_id="alice")
    assert post(url, messages, user_id="bob")["usage"]["prompt_cache_hit_tokens"] == 0
    assert post(url, messages, user_id="alice")["usage"]["prompt_cache_hit_tokens"] > 0
    other_key = httpx.post(
        f"{url}/chat/completions",
        headers={"Authorization": "Bearer sk-charlie"},
        json={"model": "deepseek-flash", "messages": messages, "user_id": "alice"},
    ).json()
    assert other_key["usage"]["prompt_cache_hit_tokens"] == 0
