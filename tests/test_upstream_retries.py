"""Transient failures before the first delta are retried; nothing else is."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from conversations.upstream import (
    AuthError,
    Completed,
    InsufficientBalance,
    InsufficientSystemResource,
    InvalidRequest,
    ModelTarget,
    Overloaded,
    QueueTimedOut,
    RateLimited,
    RetryNotice,
    ServerError,
    Truncated,
    UnknownModel,
    Unreachable,
    UpstreamError,
)
from tests.test_upstream_support import (
    USAGE,
    Connection,
    RawServer,
    answer_status,
    answer_stream,
    chunk,
    collect,
    error_body,
    hello_stream,
    serving,
    sse,
    upstream_client,
)

TARGET = ModelTarget("deepseek-flash", thinking=False, reasoning_passback="send")
MESSAGES = [{"role": "user", "content": "Hi"}]
GOOD_BODY = (
    b'{"id":"a","object":"chat.completion","created":1,"model":"deepseek-flash",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"Fine."},'
    b'"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1,'
    b'"completion_tokens":1,"total_tokens":2}}'
)


def text_of(events: list[object]) -> str:
    last = events[-1]
    assert isinstance(last, Completed)
    return last.result.text


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "error_type"), [(503, Overloaded), (429, RateLimited), (500, ServerError)]
)
async def test_a_transient_status_is_retried_then_the_stream_succeeds(
    status: int, error_type: type[UpstreamError]
) -> None:
    notices: list[RetryNotice] = []
    handlers = [
        answer_status(status, error_body("busy", "server_error")),
        answer_stream(hello_stream()),
    ]
    async with serving(handlers) as (server, client):
        events = await collect(client.stream_chat(TARGET, MESSAGES, on_retry=notices.append))
    assert text_of(events) == "Hello there"
    assert len(server.requests) == 2
    assert [type(n.error) for n in notices] == [error_type]
    assert notices[0].attempt == 1
    assert isinstance(events[-1], Completed) and events[-1].result.attempts == 2


@pytest.mark.asyncio
async def test_a_whitespace_only_body_is_retried_then_succeeds() -> None:
    async def blank(connection: Connection) -> None:
        await connection.head(chunked=False, content_type="application/json")
        await connection.write(b"\n\n\n\n")
        await connection.end()

    notices: list[RetryNotice] = []
    handlers = [blank, answer_status(200, GOOD_BODY)]
    async with RawServer(handlers) as server, upstream_client(server.base_url) as client:
        result = await client.complete_chat(TARGET, MESSAGES, on_retry=notices.append)
    assert result.text == "Fine."
    assert result.attempts == 2
    assert len(server.requests) == 2
    assert isinstance(notices[0].error, QueueTimedOut)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.asyncio
async def test_a_refused_connection_is_retried_once_the_server_is_up() -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    started: list[asyncio.Server] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = hello_stream("Back online")
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        writer.write(head + body)
        await writer.drain()
        writer.close()

    def start_server(notice: RetryNotice) -> None:
        assert isinstance(notice.error, Unreachable)
        if not started:
            task = asyncio.get_running_loop().create_task(
                asyncio.start_server(handler, "127.0.0.1", port)
            )
            task.add_done_callback(lambda t: started.append(t.result()))

    async with upstream_client(base_url, backoff_base_s=0.4, backoff_max_s=0.4) as client:
        events = await collect(client.stream_chat(TARGET, MESSAGES, on_retry=start_server))
    assert text_of(events) == "Back online"
    started[0].close()


@pytest.mark.asyncio
async def test_an_unreachable_upstream_fails_after_the_allowed_retries() -> None:
    notices: list[RetryNotice] = []
    base_url = f"http://127.0.0.1:{free_port()}"
    async with upstream_client(base_url) as client:
        with pytest.raises(Unreachable) as caught:
            await collect(client.stream_chat(TARGET, MESSAGES, on_retry=notices.append))
    assert len(notices) == 2
    assert caught.value.retryable


@pytest.mark.asyncio
async def test_retries_stop_after_max_retries() -> None:
    async with serving([answer_status(503, b"")], max_retries=2) as (server, client):
        with pytest.raises(Overloaded):
            await collect(client.stream_chat(TARGET, MESSAGES))
    assert len(server.requests) == 3


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "message", "error_type", "shown_as"),
    [
        (400, "Invalid max_tokens value", InvalidRequest, 400),
        (400, "Model Not Exist", UnknownModel, 502),  # our registry's fault, not the request's
        (401, "Authentication Fails", AuthError, 401),
        (402, "Insufficient Balance", InsufficientBalance, 402),
        (422, "Failed to deserialize the JSON body", InvalidRequest, 422),
    ],
)
async def test_a_client_error_is_never_retried(
    status: int, message: str, error_type: type[UpstreamError], shown_as: int
) -> None:
    handlers = [answer_status(status, error_body(message)), answer_stream(hello_stream())]
    async with serving(handlers) as (server, client):
        with pytest.raises(error_type) as caught:
            await collect(client.stream_chat(TARGET, MESSAGES))
    assert len(server.requests) == 1
    assert caught.value.http_status == shown_as
    assert not caught.value.retryable


@pytest.mark.asyncio
async def test_nothing_is_retried_after_the_first_delta_and_the_partial_is_kept() -> None:
    cut = sse(chunk("", role=True), chunk("Hel"), chunk("lo, wor"), done=False)
    handlers = [answer_stream(cut), answer_stream(hello_stream())]
    received: list[object] = []
    async with RawServer(handlers) as server, upstream_client(server.base_url) as client:
        with pytest.raises(Truncated) as caught:
            async for event in client.stream_chat(TARGET, MESSAGES):
                received.append(event)
    assert len(server.requests) == 1
    assert caught.value.partial is not None
    assert caught.value.partial.text == "Hello, wor"
    assert len(received) == 2


@pytest.mark.asyncio
async def test_a_truncated_stream_before_any_delta_is_retried() -> None:
    cut = sse(chunk("", role=True), done=False)  # the role-only chunk is not a delta
    handlers = [answer_stream(cut), answer_stream(hello_stream())]
    async with RawServer(handlers) as server, upstream_client(server.base_url) as client:
        events = await collect(client.stream_chat(TARGET, MESSAGES))
    assert text_of(events) == "Hello there"
    assert len(server.requests) == 2


@pytest.mark.asyncio
async def test_insufficient_system_resource_before_output_is_retried() -> None:
    empty = sse(chunk("", role=True), chunk("", finish="insufficient_system_resource", usage=USAGE))
    handlers = [answer_stream(empty), answer_stream(hello_stream())]
    async with RawServer(handlers) as server, upstream_client(server.base_url) as client:
        events = await collect(client.stream_chat(TARGET, MESSAGES))
    assert text_of(events) == "Hello there"
    assert len(server.requests) == 2


@pytest.mark.asyncio
async def test_insufficient_system_resource_after_output_is_raised_with_the_partial() -> None:
    half = sse(
        chunk("Half", role=True), chunk("", finish="insufficient_system_resource", usage=USAGE)
    )
    handlers = [answer_stream(half), answer_stream(hello_stream())]
    async with RawServer(handlers) as server, upstream_client(server.base_url) as client:
        with pytest.raises(InsufficientSystemResource) as caught:
            await collect(client.stream_chat(TARGET, MESSAGES))
    assert len(server.requests) == 1
    assert caught.value.partial is not None
    assert caught.value.partial.text == "Half"
    assert caught.value.partial.usage == USAGE


@pytest.mark.asyncio
async def test_retry_after_is_honoured() -> None:
    notices: list[RetryNotice] = []
    handlers = [
        answer_status(429, error_body("Your current concurrency is 40"), {"Retry-After": "1"}),
        answer_stream(hello_stream()),
    ]
    async with RawServer(handlers) as server, upstream_client(server.base_url) as client:
        started = time.monotonic()
        events = await collect(client.stream_chat(TARGET, MESSAGES, on_retry=notices.append))
        elapsed = time.monotonic() - started
    assert text_of(events) == "Hello there"
    assert notices[0].delay_s == 1.0
    assert isinstance(notices[0].error, RateLimited)
    assert notices[0].error.retry_after == 1.0
    assert elapsed >= 1.0


@pytest.mark.asyncio
async def test_a_retry_after_beyond_the_budget_is_raised_not_waited() -> None:
    handlers = [answer_status(429, b"", {"Retry-After": "30"}), answer_stream(hello_stream())]
    async with serving(handlers, retry_budget_s=20.0) as (server, client):
        started = time.monotonic()
        with pytest.raises(RateLimited) as caught:
            await collect(client.stream_chat(TARGET, MESSAGES))
    assert time.monotonic() - started < 1.0
    assert caught.value.retry_after == 30.0
    assert len(server.requests) == 1


@pytest.mark.asyncio
async def test_backoff_waits_grow_and_stay_within_the_budget() -> None:
    notices: list[RetryNotice] = []
    async with serving(
        [answer_status(500, b"")],
        max_retries=4,
        backoff_base_s=0.05,
        backoff_max_s=10,
        retry_budget_s=0.3,
    ) as (server, client):
        with pytest.raises(ServerError):
            await collect(client.stream_chat(TARGET, MESSAGES, on_retry=notices.append))
    delays = [n.delay_s for n in notices]
    # Equal jitter: attempt n waits between half and all of base * 2**(n-1).
    assert 0.025 <= delays[0] <= 0.05
    assert 0.05 <= delays[1] <= 0.1
    assert sum(delays) <= 0.3 + 1e-9
    assert len(server.requests) == len(delays) + 1
