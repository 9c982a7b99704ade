"""The API is served beside Django, not through it, and keeps the site's request rules: a
request id on every answer (the client's own when it is sane), the ALLOWED_HOSTS check, and
every other path still Django's."""

from __future__ import annotations

import re

import httpx
import pytest

from conversations.models import ModelConfig, User
from tests.test_api_support import assert_envelope, bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_every_answer_carries_a_request_id_and_keeps_a_sane_one_from_the_client(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    key = make_key(alice)
    generated = chat(base, bearer(key))
    assert generated.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{16}", generated.headers["x-request-id"])
    mine = chat(base, {**bearer(key), "X-Request-ID": "trace-42.a_b"})
    assert mine.headers["x-request-id"] == "trace-42.a_b"
    odd = httpx.get(base + "/v1/models", headers={**bearer(key), "X-Request-ID": "no spaces"})
    assert odd.status_code == 200 and odd.headers["x-request-id"] != "no spaces"
    refused = httpx.get(base + "/v1/models")
    assert refused.status_code == 401 and refused.headers["x-request-id"]
    streamed = chat(base, bearer(key), stream=True)
    assert streamed.status_code == 200 and streamed.headers["x-request-id"]


def test_a_host_outside_allowed_hosts_is_refused(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    response = chat(base, {**bearer(make_key(alice)), "Host": "evil.example.com"})
    assert_envelope(response, 400, "invalid_request_error")
    assert chat(base, {**bearer(make_key(alice)), "Host": "localhost"}).status_code == 200


def test_other_paths_are_still_django(base: str) -> None:
    page = httpx.get(base + "/settings/api-keys/")
    assert page.status_code == 302 and "/accounts/login/" in page.headers["location"]
    assert httpx.get(base + "/v1/embeddings").status_code == 404
    assert httpx.get(base + "/healthz").json() == {"status": "ok"}
