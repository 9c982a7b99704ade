"""The API's paths with a trailing slash (``/chat/completions/``, ``/models/``,
``/user/balance/``, and the same under ``/v1/``) are the same endpoints: a client that builds
its URLs that way got Django's HTML 404 page (or, under ``/v1/``, the API's JSON 404) instead
of an answer."""

from __future__ import annotations

import httpx
import pytest

from conversations.models import ModelConfig, User
from tests.test_api_support import bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def headers(alice: User, chat_model: ModelConfig) -> dict[str, str]:
    return bearer(make_key(alice))


@pytest.mark.parametrize("path", ["/chat/completions/", "/v1/chat/completions/"])
def test_a_completion_with_a_trailing_slash(base: str, headers: dict[str, str], path: str) -> None:
    messages = [{"role": "user", "content": "[[sim: say=ok]]"}]
    response = chat(base, headers, path=path, messages=messages)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "ok"


@pytest.mark.parametrize("path", ["/models/", "/v1/models/", "/user/balance/"])
def test_the_read_endpoints_with_a_trailing_slash(
    base: str, headers: dict[str, str], path: str
) -> None:
    response = httpx.get(base + path, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"


def test_other_paths_are_unchanged(base: str, headers: dict[str, str]) -> None:
    response = httpx.get(base + "/v1/models//", headers=headers, timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
