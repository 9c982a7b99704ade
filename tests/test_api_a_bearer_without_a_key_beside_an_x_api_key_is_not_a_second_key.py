"""``Authorization: Bearer`` with no key after it, beside an ``X-API-Key`` that carries one, is
a header left blank, not a second key: the call is made with the X-API-Key.

A header sent empty was already not one (a client's default header left blank beside the one
the user set), but a client's default Authorization header is most often its template with the
key left blank, ``Bearer `` (proxies and servers drop the trailing space): that was taken as a
second key, and every call was refused with the 400 "not both".
"""

from __future__ import annotations

import httpx
import pytest

from conversations.models import ModelConfig, User
from tests.test_api_support import assert_envelope, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_a_bearer_without_a_key_beside_an_x_api_key_is_not_a_second_key(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    key = make_key(alice)
    response = chat(base, {"Authorization": "Bearer", "X-API-Key": key})
    assert response.status_code == 200, response.text
    models = httpx.get(base + "/v1/models", headers={"Authorization": "Bearer", "X-API-Key": key})
    assert models.status_code == 200, models.text


def test_a_bearer_without_a_key_alone_is_still_the_401_asking_for_one(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    error = assert_envelope(chat(base, {"Authorization": "Bearer"}), 401, "authentication_error")
    assert "Bearer sk-" in error["message"]
