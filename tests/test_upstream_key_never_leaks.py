"""The API key never appears in an error's text, its repr, its detail or the logs."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable

import pytest

from conversations.upstream import ModelTarget, UpstreamClient, UpstreamError
from tests.test_upstream_support import (
    API_KEY,
    Connection,
    answer_status,
    answer_stream,
    chunk,
    collect,
    make_config,
    serving,
    sse,
    upstream_client,
)

TARGET = ModelTarget("deepseek-flash", thinking=False, reasoning_passback="send")
MESSAGES = [{"role": "user", "content": "Hi"}]
ECHO = f"Authentication Fails, Your api key: {API_KEY} is invalid".encode()


def echoing(status: int) -> Callable[[Connection], Awaitable[None]]:
    body = b'{"error":{"message":"key ' + API_KEY.encode() + b' rejected","type":"x"}}'
    return answer_status(status, body)


async def keepalives_after_output(connection: Connection) -> None:
    await connection.head()
    await connection.write(sse(chunk("Hi", role=True), done=False))
    while True:
        await connection.write(b": keep-alive\n\n", pieces=None)
        await asyncio.sleep(0.05)


SCENARIOS: dict[str, Callable[[Connection], Awaitable[None]]] = {
    "401": answer_status(
        401, b'{"error":{"message":"' + ECHO + b'","type":"authentication_error"}}'
    ),
    "400": echoing(400),
    "402": echoing(402),
    "422": echoing(422),
    "429": echoing(429),
    "500-html": answer_status(500, b"<html>upstream " + API_KEY.encode() + b"</html>"),
    "503": echoing(503),
    "error-event": answer_stream(
        sse({"error": {"message": f"bad key {API_KEY}", "type": "invalid_request_error"}})
    ),
    "truncated": answer_stream(sse(chunk("Hi", role=True), done=False)),
    "stalled": keepalives_after_output,
}


def assert_clean(error: UpstreamError, logs: str) -> None:
    for text in (str(error), repr(error), error.message, error.detail, logs):
        assert API_KEY not in text
        assert API_KEY[3:] not in text


@pytest.mark.asyncio
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_the_key_does_not_leak_from_an_upstream_failure(
    scenario: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serving([SCENARIOS[scenario]], idle_timeout=0.3, max_retries=1) as (_server, client):
        with pytest.raises(UpstreamError) as caught:
            await collect(client.stream_chat(TARGET, MESSAGES))
    assert_clean(caught.value, caplog.text)
    assert len(caplog.records) >= 1  # the failure was logged, and cleanly


@pytest.mark.asyncio
async def test_an_upstream_message_with_the_key_is_replaced_and_redacted_in_the_log() -> None:
    # Not passed on at all: tests/test_an_upstream_refusal_shows_nothing_of_our_key.py.
    async with serving([echoing(400)]) as (_server, client):
        with pytest.raises(UpstreamError) as caught:
            await collect(client.stream_chat(TARGET, MESSAGES))
    assert caught.value.message == "The model provider refused the request as invalid."
    assert "key [redacted] rejected" in caught.value.detail


@pytest.mark.asyncio
async def test_the_key_does_not_leak_from_a_connection_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with upstream_client(f"http://127.0.0.1:{port}", max_retries=1) as client:
        with pytest.raises(UpstreamError) as caught:
            await collect(client.stream_chat(TARGET, MESSAGES))
    assert_clean(caught.value, caplog.text)


def test_the_config_and_client_reprs_hide_the_key() -> None:
    config = make_config("http://127.0.0.1:1")
    assert API_KEY not in repr(config)
    assert API_KEY not in repr(UpstreamClient(config))
