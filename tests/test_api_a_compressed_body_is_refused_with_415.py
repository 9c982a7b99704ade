"""A request body sent compressed (``Content-Encoding: gzip``) is a 415 in the API's envelope,
saying to send it uncompressed, after the key is checked and without a charge. A gzip body was
a 400 "not valid UTF-8 (byte 1)", and a plain body labelled gzip was answered as if the label
were not there. Answers are never compressed, whatever the client accepts: a stream must reach
the client event by event, and a non-streamed answer is a few kB."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests.test_api_support import assert_envelope, bearer, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

BODY = json.dumps(
    {"model": "deepseek-chat", "messages": [{"role": "user", "content": "[[sim: say=ok]]"}]}
).encode()


@pytest.fixture
def headers(alice: User, chat_model: ModelConfig) -> dict[str, str]:
    return {**bearer(make_key(alice)), "Content-Type": "application/json"}


def post(base: str, headers: dict[str, str], body: bytes, encoding: str) -> httpx.Response:
    return httpx.post(
        base + "/v1/chat/completions",
        headers={**headers, "Content-Encoding": encoding},
        content=body,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("body", "encoding"),
    [(gzip.compress(BODY), "gzip"), (BODY, "gzip"), (BODY, "br"), (BODY, "deflate, gzip")],
)
def test_a_compressed_body_is_a_415_naming_the_encoding(
    base: str, headers: dict[str, str], body: bytes, encoding: str
) -> None:
    response = post(base, headers, body, encoding)
    error = assert_envelope(response, 415, "invalid_request_error")
    assert f"Content-Encoding: {encoding}" in error["message"]
    assert "uncompressed" in error["message"]
    assert response.headers["accept-encoding"] == "identity"
    assert response.headers["access-control-allow-origin"] == "*"
    assert not UsageRecord.objects.exists()


def test_the_key_is_checked_first(base: str) -> None:
    headers = bearer("sk-team-" + "x" * 40)
    response = post(base, headers, gzip.compress(BODY), "gzip")
    assert_envelope(response, 401, "authentication_error")


def test_identity_is_no_compression(base: str, headers: dict[str, str]) -> None:
    response = post(base, headers, BODY, "identity")
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "ok"


@pytest.mark.parametrize("stream", [False, True])
def test_answers_are_not_compressed_for_a_client_that_accepts_gzip(
    base: str, headers: dict[str, str], stream: bool
) -> None:
    payload = {**json.loads(BODY), "stream": stream}
    response = httpx.post(
        base + "/v1/chat/completions",
        headers={**headers, "Accept-Encoding": "gzip, br"},
        json=payload,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert "content-encoding" not in response.headers
    assert b"ok" in response.content
