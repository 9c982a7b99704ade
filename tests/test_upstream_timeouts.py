"""The idle timer, the queueing cap and the overall deadline."""

from __future__ import annotations

import asyncio
import time

import pytest

from conversations.upstream import (
    Completed,
    ContentDelta,
    ModelTarget,
    QueueTimedOut,
    Stalled,
    TimedOut,
)
from tests.test_upstream_support import (
    Connection,
    chunk,
    collect,
    hello_stream,
    serving,
    sse,
)

TARGET = ModelTarget("deepseek-flash", thinking=False, reasoning_passback="send")
MESSAGES = [{"role": "user", "content": "Hi"}]


async def keepalives_forever(connection: Connection, interval: float = 0.05) -> None:
    while True:
        await connection.write(b": keep-alive\n\n", pieces=None)
        await asyncio.sleep(interval)


@pytest.mark.asyncio
async def test_keepalives_after_output_started_do_not_reset_the_idle_timer() -> None:
    async def handler(connection: Connection) -> None:
        await connection.head()
        await connection.write(sse(chunk("", role=True), chunk("Partial"), done=False))
        await keepalives_forever(connection)

    async with serving([handler], idle_timeout=0.4) as (server, client):
        started = time.monotonic()
        with pytest.raises(Stalled) as caught:
            await collect(client.stream_chat(TARGET, MESSAGES))
        elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 1.5
    assert caught.value.partial is not None
    assert caught.value.partial.text == "Partial"
    assert len(server.requests) == 1  # output had started: no retry


@pytest.mark.asyncio
async def test_keepalives_before_output_keep_the_request_alive_past_the_idle_timeout() -> None:
    async def handler(connection: Connection) -> None:
        await connection.head()
        for _ in range(20):  # 1 s of queueing, far longer than the 0.3 s idle timeout
            await connection.write(b": keep-alive\n\n", pieces=None)
            await asyncio.sleep(0.05)
        await connection.write(hello_stream("Finally served"))
        await connection.end()

    async with serving([handler], idle_timeout=0.3, queue_timeout=5) as (_server, client):
        events = await collect(client.stream_chat(TARGET, MESSAGES))
    assert isinstance(events[-1], Completed)
    assert events[-1].result.text == "Finally served"


@pytest.mark.asyncio
async def test_keepalives_before_output_end_at_the_queue_cap() -> None:
    async def handler(connection: Connection) -> None:
        await connection.head()
        await keepalives_forever(connection)

    async with serving([handler], idle_timeout=0.3, queue_timeout=0.8) as (server, client):
        started = time.monotonic()
        with pytest.raises(TimedOut) as caught:
            await collect(client.stream_chat(TARGET, MESSAGES))
        elapsed = time.monotonic() - started
    assert type(caught.value) is TimedOut
    assert 0.8 <= elapsed < 2.0
    assert len(server.requests) == 1  # our own cap: not retried


@pytest.mark.asyncio
async def test_silence_before_output_is_stalled_and_retried() -> None:
    async def silent(connection: Connection) -> None:
        await connection.head()
        await asyncio.sleep(10)

    async def good(connection: Connection) -> None:
        await connection.head()
        await connection.write(hello_stream())
        await connection.end()

    async with serving([silent, good], idle_timeout=0.3) as (server, client):
        events = await collect(client.stream_chat(TARGET, MESSAGES))
    assert events[-1].result.text == "Hello there"
    assert len(server.requests) == 2


@pytest.mark.asyncio
async def test_the_overall_deadline_ends_a_slow_stream_with_its_partial() -> None:
    async def slow(connection: Connection) -> None:
        await connection.head()
        await connection.write(sse(chunk("", role=True), done=False))
        while True:
            await connection.write(sse(chunk("tick "), done=False), pieces=None)
            await asyncio.sleep(0.1)

    async with serving([slow], idle_timeout=5, deadline=0.7) as (_server, client):
        started = time.monotonic()
        with pytest.raises(TimedOut) as caught:
            await collect(client.stream_chat(TARGET, MESSAGES))
        elapsed = time.monotonic() - started
    assert 0.7 <= elapsed < 1.5
    assert caught.value.partial is not None
    assert caught.value.partial.text.startswith("tick tick ")


@pytest.mark.asyncio
async def test_time_the_caller_spends_between_events_is_not_upstream_idleness() -> None:
    async with serving([lambda c: serve_all(c)], idle_timeout=0.2) as (_server, client):
        text = ""
        async for event in client.stream_chat(TARGET, MESSAGES):
            if isinstance(event, ContentDelta):
                text += event.text
                await asyncio.sleep(0.3)  # a slow consumer, longer than the idle timeout
    assert text == "Hello there"


async def serve_all(connection: Connection) -> None:
    await connection.head()
    await connection.write(hello_stream(), pieces=None)
    await connection.end()


@pytest.mark.asyncio
async def test_the_upstream_closing_a_queued_stream_is_reported_as_a_queue_timeout() -> None:
    async def queue_then_close(connection: Connection) -> None:
        await connection.head()
        for _ in range(3):
            await connection.write(b": keep-alive\n\n", pieces=None)
            await asyncio.sleep(0.02)
        await connection.end()

    async with serving([queue_then_close], max_retries=1) as (server, client):
        with pytest.raises(QueueTimedOut) as caught:
            await collect(client.stream_chat(TARGET, MESSAGES))
    assert isinstance(caught.value, TimedOut)
    assert len(server.requests) == 2
