"""A large body is parsed only once its key is known to be live.

A body is read as JSON on the worker's event loop; up to the 2 MB limit, nested objects take
0.3-0.6 s to parse. The key was looked up after the parse (in the statement that admits the
call), so anyone able to reach the API, with a made-up key of the right shape, could tie up a
worker by sending such bodies again and again. Past ``KEY_BEFORE_PARSE_BYTES`` the key is
looked up first; a small body is still parsed first (its parse costs less than the round trip
a separate lookup would add to every call).
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from unittest import mock

import pytest

from conversations import api_asgi
from conversations.api_asgi import ApiApplication
from conversations.models import ModelConfig, User
from tests.test_api_support import make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def post(secret: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """One POST to the API application in this process, as daphne hands it over."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {secret}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict[str, Any]] = []
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:  # the answer is sent before the client goes
            return {"type": "http.disconnect"}
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await ApiApplication()(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(payload)


def large_body() -> bytes:
    # Valid JSON past the threshold, as an attacker's would be: many small nested objects.
    filler = [{"a": {"b": {"c": 1}}}] * (api_asgi.KEY_BEFORE_PARSE_BYTES // 20)
    body = json.dumps({"model": "deepseek-chat", "messages": [], "filler": filler}).encode()
    assert len(body) > api_asgi.KEY_BEFORE_PARSE_BYTES
    return body


async def test_a_large_body_with_a_made_up_key_is_refused_unread(
    alice: User, chat_model: ModelConfig
) -> None:
    made_up = "sk-team-" + secrets.token_urlsafe(30)[:40]
    with mock.patch.object(api_asgi, "_parse_body", wraps=api_asgi._parse_body) as parse:
        status, body = await post(made_up, large_body())
    assert status == 401, body
    assert body["error"]["type"] == "authentication_error"
    assert parse.call_count == 0  # before: parsed first, then refused

    # With a live key the same body is read, and answered for what it says.
    with mock.patch.object(api_asgi, "_parse_body", wraps=api_asgi._parse_body) as parse:
        status, body = await post(await make_key_async(alice), large_body())
    assert parse.call_count == 1
    assert status == 400, body
    assert body["error"]["type"] == "invalid_request_error"


async def test_a_small_body_is_parsed_before_its_key_is_looked_up(
    alice: User, chat_model: ModelConfig
) -> None:
    made_up = "sk-team-" + secrets.token_urlsafe(30)[:40]
    small = b'{"model": "deepseek-chat", "messages": [{"role": "user", "content": "Hi"}]}'
    with mock.patch.object(api_asgi, "_parse_body", wraps=api_asgi._parse_body) as parse:
        status, body = await post(made_up, small)
    assert status == 401, body
    assert parse.call_count == 1  # one round trip, the admitting statement's


async def make_key_async(user: User) -> str:
    from asgiref.sync import sync_to_async

    return await sync_to_async(make_key)(user)
