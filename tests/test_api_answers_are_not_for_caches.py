"""No answer of the API is for a cache to keep: a balance or a model list kept by a proxy went
stale, a completion is one call's. Each says ``Cache-Control: no-cache``, as DeepSeek's do
(deepseek-api.md, "Response headers seen in the wild"); before, only streams and answers whose
status went out early did."""

from __future__ import annotations

import httpx
import pytest

from conversations.models import ModelConfig, User
from tests.test_api_support import bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_every_answer_says_no_cache(base: str, alice: User, chat_model: ModelConfig) -> None:
    key = bearer(make_key(alice))
    answers = {
        "balance": httpx.get(base + "/user/balance", headers=key),
        "models": httpx.get(base + "/models", headers=key),
        "model": httpx.get(base + "/models/deepseek-chat", headers=key),
        "completion": chat(base, key, messages=[{"role": "user", "content": "Hi"}]),
        "stream": chat(base, key, messages=[{"role": "user", "content": "Hi"}], stream=True),
        "refusal": httpx.get(base + "/user/balance", headers=bearer("sk-team-" + "x" * 40)),
        "malformed": httpx.post(base + "/chat/completions", headers=key, content=b"{"),
    }
    for name, response in answers.items():
        assert response.status_code in (200, 400, 401), (name, response.text)
        assert response.headers.get("cache-control") == "no-cache", name
