"""A CORS preflight on the API's paths is answered (204, the path's methods, the request
headers asked for, cached for two hours) without a key, and every answer — success, error or
stream — lets any origin read it. Other paths stay 404s; see
tests/ui/test_a_page_on_another_origin_can_call_the_api.py for a real browser's view."""

from __future__ import annotations

import httpx
import pytest

from conversations.models import ModelConfig, User
from tests.test_api_support import bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

PREFLIGHT = {
    "Origin": "https://tools.example.com",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
}


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/v1/chat/completions", "POST"),
        ("/chat/completions", "POST"),
        ("/v1/models", "GET, HEAD"),
        ("/user/balance", "GET, HEAD"),
    ],
)
def test_a_preflight_is_answered_without_a_key(base: str, path: str, methods: str) -> None:
    response = httpx.options(base + path, headers=PREFLIGHT, timeout=10)
    assert response.status_code == 204, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-methods"] == methods
    assert response.headers["allow"] == methods
    assert response.headers["access-control-allow-headers"] == (
        "authorization, content-type, x-stainless-os"
    )
    assert "access-control-allow-credentials" not in response.headers
    assert response.content == b""


def test_a_preflight_asking_for_odd_headers_gets_the_usual_ones(base: str) -> None:
    headers = {**PREFLIGHT, "Access-Control-Request-Headers": "authorization\x7f, ("}
    response = httpx.options(base + "/v1/chat/completions", headers=headers, timeout=10)
    assert response.headers["access-control-allow-headers"] == (
        "authorization, x-api-key, content-type, x-request-id"
    )


def test_every_answer_may_be_read_by_any_origin(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    headers = {**bearer(make_key(alice)), "Origin": "https://tools.example.com"}
    for response in [
        chat(base, headers, messages=[{"role": "user", "content": "[[sim: say=ok]]"}]),
        chat(base, headers, stream=True),
        chat(base, headers, model="nope"),
        chat(base, {"Origin": "https://tools.example.com"}),
        httpx.get(base + "/v1/models", headers=headers, timeout=10),
    ]:
        assert response.headers["access-control-allow-origin"] == "*", response.text
        exposed = response.headers["access-control-expose-headers"]
        assert "x-request-id" in exposed and "retry-after" in exposed


def test_options_elsewhere_under_v1_is_still_a_404(base: str) -> None:
    response = httpx.options(base + "/v1/embeddings", headers=PREFLIGHT, timeout=10)
    assert response.status_code == 404
