"""``response_format.type`` has a default in the API reference ("text"): ``{}`` and
``{"type": null}`` ask for text, as upstream takes them; anything else still needs a known
type and no other field."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import ModelConfig, User
from tests.test_api_support import assert_envelope, bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def headers(alice: User, chat_model: ModelConfig) -> dict[str, str]:
    return bearer(make_key(alice))


@pytest.mark.parametrize("response_format", [{}, {"type": None}])
def test_a_response_format_without_a_type_asks_for_text(
    base: str, headers: dict[str, str], response_format: dict[str, Any]
) -> None:
    messages = [{"role": "user", "content": "[[sim: say=plain words]]"}]
    response = chat(base, headers, messages=messages, response_format=response_format)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "plain words"


@pytest.mark.parametrize(
    "response_format", [{"type": ""}, {"type": "xml"}, {"kind": "text"}, "text", []]
)
def test_any_other_response_format_is_still_refused(
    base: str, headers: dict[str, str], response_format: Any
) -> None:
    error = assert_envelope(
        chat(base, headers, response_format=response_format), 400, "invalid_request_error"
    )
    assert error["param"] == "response_format"
