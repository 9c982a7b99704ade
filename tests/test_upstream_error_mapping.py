"""Upstream failures map to one typed hierarchy with a code, a status and a safe message."""

from __future__ import annotations

import pytest

from conversations.upstream import (
    AuthError,
    BadResponse,
    InsufficientBalance,
    InvalidRequest,
    ModelTarget,
    Overloaded,
    RateLimited,
    ServerError,
    Truncated,
    UpstreamError,
)
from conversations.upstream.errors import error_from_response, parse_retry_after
from tests.test_upstream_support import (
    API_KEY,
    answer_status,
    answer_stream,
    chunk,
    collect,
    error_body,
    serving,
    sse,
)

TARGET = ModelTarget("deepseek-flash", thinking=False, reasoning_passback="send")
MESSAGES = [{"role": "user", "content": "Hi"}]
GATEWAY_HTML = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


@pytest.mark.parametrize(
    ("status", "body", "error_type", "code", "retryable"),
    [
        (
            401,
            error_body("Authentication Fails", "authentication_error"),
            AuthError,
            "upstream_auth_failed",
            False,
        ),
        (
            402,
            error_body("Insufficient Balance", "unknown_error"),
            InsufficientBalance,
            "upstream_insufficient_balance",
            False,
        ),
        (
            400,
            error_body("Invalid max_tokens value, the valid range of max_tokens is [1, 8192]"),
            InvalidRequest,
            "invalid_request",
            False,
        ),
        (
            422,
            error_body("Failed to deserialize the JSON body"),
            InvalidRequest,
            "invalid_request",
            False,
        ),
        (429, b"", RateLimited, "rate_limited", True),
        (500, b"", ServerError, "upstream_server_error", True),
        (502, GATEWAY_HTML, ServerError, "upstream_server_error", True),
        (503, GATEWAY_HTML, Overloaded, "upstream_overloaded", True),
    ],
)
def test_a_status_maps_to_its_error(
    status: int, body: bytes, error_type: type[UpstreamError], code: str, retryable: bool
) -> None:
    error = error_from_response(status, body, {}, API_KEY)
    assert type(error) is error_type
    assert (error.code, error.http_status, error.retryable) == (code, status, retryable)
    assert error.message
    assert "<html>" not in error.message


def test_an_invalid_request_carries_the_upstream_message() -> None:
    message = "Invalid max_tokens value, the valid range of max_tokens is [1, 8192]"
    error = error_from_response(400, error_body(message), {}, API_KEY)
    assert error.message == message
    assert str(error) == message


def test_gateway_html_stays_out_of_the_message_but_reaches_the_detail() -> None:
    error = error_from_response(502, GATEWAY_HTML, {}, API_KEY)
    assert error.message == "The model provider had an internal error."
    assert "502 Bad Gateway" in error.detail


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    when = parse_retry_after("Wed, 21 Oct 2026 07:28:30 GMT", now=1792567700.0)
    assert when == pytest.approx(10.0)


@pytest.mark.asyncio
async def test_an_error_event_mid_stream_is_raised_with_the_partial() -> None:
    body = sse(
        chunk("Hello", role=True),
        {"error": {"message": "model crashed", "type": "server_error"}},
    )
    async with serving([answer_stream(body)]) as (server, client):
        with pytest.raises(ServerError) as caught:
            await collect(client.stream_chat(TARGET, MESSAGES))
    assert caught.value.partial is not None
    assert caught.value.partial.text == "Hello"
    assert len(server.requests) == 1


@pytest.mark.asyncio
async def test_a_stream_event_that_is_not_json_is_a_bad_response() -> None:
    body = sse(chunk("", role=True), "{not json")
    async with serving([answer_stream(body)], max_retries=0) as (_server, client):
        with pytest.raises(BadResponse):
            await collect(client.stream_chat(TARGET, MESSAGES))


@pytest.mark.asyncio
async def test_a_stream_cut_before_done_is_truncated() -> None:
    body = sse(chunk("Hi", role=True), chunk(" there", finish="stop"), done=False)
    async with serving([answer_stream(body)]) as (_server, client):
        with pytest.raises(Truncated) as caught:
            await collect(client.stream_chat(TARGET, MESSAGES))
    assert caught.value.partial is not None
    assert caught.value.partial.text == "Hi there"
    assert caught.value.partial.finish_reason == "stop"


@pytest.mark.asyncio
async def test_a_non_streaming_call_maps_errors_the_same_way() -> None:
    async with serving([answer_status(402, error_body("Insufficient Balance"))]) as (
        server,
        client,
    ):
        with pytest.raises(InsufficientBalance):
            await client.complete_chat(TARGET, MESSAGES)
    assert len(server.requests) == 1
