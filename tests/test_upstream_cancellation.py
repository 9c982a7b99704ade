"""Cancelling the consumer or closing the stream hangs up on the upstream at once."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from conversations.upstream import ContentDelta, ModelTarget
from tests.test_upstream_support import Connection, RawServer, chunk, sse, upstream_client

TARGET = ModelTarget("deepseek-flash", thinking=False, reasoning_passback="send")
MESSAGES = [{"role": "user", "content": "Hi"}]


class Endless:
    """Sends two deltas, then waits; records whether the client hung up."""

    def __init__(self) -> None:
        self.hung_up = asyncio.Event()
        self.sent = asyncio.Event()

    async def __call__(self, connection: Connection) -> None:
        await connection.head()
        try:
            await connection.write(sse(chunk("One", role=True), chunk(" two"), done=False))
        except ConnectionError:
            self.hung_up.set()  # the client hung up while the deltas were being written
            return
        self.sent.set()
        if await connection.wait_for_hangup(timeout=10):
            self.hung_up.set()


@pytest.mark.asyncio
async def test_cancelling_the_consuming_task_closes_the_connection() -> None:
    endless = Endless()
    received: list[str] = []

    async with RawServer([endless]) as server, upstream_client(server.base_url) as client:

        async def consume() -> None:
            async with contextlib.aclosing(client.stream_chat(TARGET, MESSAGES)) as events:
                async for event in events:
                    if isinstance(event, ContentDelta):
                        received.append(event.text)

        task = asyncio.create_task(consume())
        await endless.sent.wait()
        while len(received) < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(endless.hung_up.wait(), timeout=2)
    assert received == ["One", " two"]


@pytest.mark.asyncio
async def test_closing_the_stream_generator_closes_the_connection() -> None:
    endless = Endless()
    async with RawServer([endless]) as server, upstream_client(server.base_url) as client:
        events = client.stream_chat(TARGET, MESSAGES)
        first = await anext(events)
        assert first == ContentDelta("One")
        await events.aclose()
        await asyncio.wait_for(endless.hung_up.wait(), timeout=2)


@pytest.mark.asyncio
async def test_a_consumer_that_stops_reading_leaves_no_connection_open() -> None:
    endless = Endless()
    async with RawServer([endless]) as server, upstream_client(server.base_url) as client:
        async with contextlib.aclosing(client.stream_chat(TARGET, MESSAGES)) as events:
            async for _ in events:
                break
        await asyncio.wait_for(endless.hung_up.wait(), timeout=2)
