from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from simulator.testing import running_simulator

AUTH = {"Authorization": "Bearer sk-alice"}
ASK = [{"role": "user", "content": "Explain database indexing with an example"}]


def check_usage_arithmetic(usage: dict[str, Any]) -> None:
    hit, miss = usage["prompt_cache_hit_tokens"], usage["prompt_cache_miss_tokens"]
    assert usage["prompt_tokens"] == hit + miss
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": hit}


def test_a_non_streaming_reply_has_the_documented_shape() -> None:
    with running_simulator() as url:
        response = httpx.post(
            f"{url}/chat/completions",
            headers=AUTH,
            json={"model": "deepseek-flash", "thinking": {"type": "disabled"}, "messages": ASK},
        )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-cache"
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-ds-trace-id"])
    body = response.json()
    assert list(body) == [
        "id",
        "object",
        "created",
        "model",
        "choices",
        "usage",
        "system_fingerprint",
    ]
    assert str(uuid.UUID(body["id"])) == body["id"]
    assert not body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert body["model"] == "deepseek-flash"
    assert re.fullmatch(r"[0-9a-f]{32}", body["system_fingerprint"])
    assert len(body["choices"]) == 1
    choice = body["choices"][0]
    assert list(choice) == ["index", "message", "logprobs", "finish_reason"]
    assert choice["message"]["role"] == "assistant"
    assert "reasoning_content" not in choice["message"]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["content"].strip()
    check_usage_arithmetic(body["usage"])
    assert "completion_tokens_details" not in body["usage"]


def test_thinking_is_on_by_default_in_the_current_profile() -> None:
    with running_simulator() as url:
        body = httpx.post(
            f"{url}/chat/completions",
            headers=AUTH,
            json={"model": "deepseek-v4-pro", "messages": ASK},
        ).json()
    message = body["choices"][0]["message"]
    assert list(message) == ["role", "content", "reasoning_content"]
    assert isinstance(message["reasoning_content"], str) and message["reasoning_content"]
    details = body["usage"]["completion_tokens_details"]
    assert 0 < details["reasoning_tokens"] <= body["usage"]["completion_tokens"]
    check_usage_arithmetic(body["usage"])


def test_legacy_chat_does_not_think_and_the_reasoner_does() -> None:
    with running_simulator(profile="legacy-2025") as url:
        chat = httpx.post(
            f"{url}/chat/completions",
            headers=AUTH,
            json={"model": "deepseek-chat", "messages": ASK},
        ).json()
        reasoner = httpx.post(
            f"{url}/chat/completions",
            headers=AUTH,
            json={"model": "deepseek-reasoner", "messages": ASK},
        ).json()
    assert re.fullmatch(r"fp_[0-9a-f]{10}_prod0820_fp8_kvcache", chat["system_fingerprint"])
    assert "reasoning_content" not in chat["choices"][0]["message"]
    assert chat["model"] == "deepseek-chat"
    assert reasoner["choices"][0]["message"]["reasoning_content"]
    assert reasoner["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0


def test_max_tokens_cuts_the_reply_with_finish_reason_length() -> None:
    with running_simulator() as url:
        body = httpx.post(
            f"{url}/chat/completions",
            headers=AUTH,
            json={
                "model": "deepseek-flash",
                "thinking": {"type": "disabled"},
                "messages": ASK,
                "max_tokens": 5,
            },
        ).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 5
    assert 0 < len(body["choices"][0]["message"]["content"]) <= 25


def test_thinking_that_uses_the_whole_budget_leaves_empty_content() -> None:
    with running_simulator() as url:
        body = httpx.post(
            f"{url}/chat/completions",
            headers=AUTH,
            json={"model": "deepseek-flash", "messages": ASK, "max_tokens": 4},
        ).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] == ""
    assert choice["message"]["reasoning_content"]
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 4


def test_the_same_conversation_gets_the_same_reply_and_others_differ() -> None:
    def ask(url: str, text: str) -> str:
        body = httpx.post(
            f"{url}/chat/completions",
            headers=AUTH,
            json={
                "model": "deepseek-flash",
                "thinking": {"type": "disabled"},
                "messages": [{"role": "user", "content": text}],
            },
        ).json()
        return str(body["choices"][0]["message"]["content"])

    with running_simulator(seed=7) as url:
        first = ask(url, "How should we plan the release?")
        again = ask(url, "How should we plan the release?")
        other = ask(url, "What is a good naming convention for Python modules?")
    with running_simulator(seed=7) as url:
        restarted = ask(url, "How should we plan the release?")
    assert first == again == restarted
    assert other != first


def test_replies_carry_varied_markdown_for_the_ui() -> None:
    seen: set[str] = set()
    with running_simulator() as url:
        for i in range(24):
            body = httpx.post(
                f"{url}/chat/completions",
                headers=AUTH,
                json={
                    "model": "deepseek-flash",
                    "thinking": {"type": "disabled"},
                    "messages": [{"role": "user", "content": f"Question {i} about caching"}],
                },
            ).json()
            content = body["choices"][0]["message"]["content"]
            if re.search(r"^```[a-z]+\n", content, re.M):
                seen.add("code")
            if re.search(r"^\| .* \|\n\| --- ", content, re.M):
                seen.add("table")
            if re.search(r"^(- |1\. )", content, re.M):
                seen.add("list")
            if "$$" in content and re.search(r"\$[^$]+\$", content):
                seen.add("math")
            assert "\n\n" in content
    assert seen == {"code", "table", "list", "math"}
