"""A stream read to its ``[DONE]`` is read to the end of its body: its connection goes back to
the pool for the next call (one closed mid-body is closed, and the next call opens another),
and nothing is left for the event loop to finalize."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from conversations.upstream import Completed, ModelTarget
from conversations.upstream.client import AFTER_DONE_WAIT_SECONDS
from simulator.testing import running_simulator
from tests.test_upstream_support import (
    RawServer,
    collect,
    hello_stream,
    upstream_client,
)

TARGET = ModelTarget("deepseek-flash", thinking=False, reasoning_passback="send")
HELLO = [{"role": "user", "content": "[[sim: say=Hello there]] Hi"}]


LAST_CHUNK = b"0\r\n\r\n"


@contextlib.asynccontextmanager
async def counting_relay(base_url: str) -> AsyncIterator[tuple[str, list[int]]]:
    """A TCP relay in front of ``base_url``; yields its own base URL and the list of the
    connections it accepted (one entry each). It holds a chunked body's last chunk back for
    20 ms, as a network may when it comes in a packet of its own."""
    host, port = base_url.removeprefix("http://").split(":")
    accepted: list[int] = []
    tasks: set[asyncio.Task[None]] = set()

    async def pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, hold_last: bool = False
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if hold_last and data.endswith(LAST_CHUNK):
                    writer.write(data[: -len(LAST_CHUNK)])
                    await writer.drain()
                    await asyncio.sleep(0.02)
                    data = LAST_CHUNK
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        both = [
            asyncio.create_task(pipe(reader, up_writer)),
            asyncio.create_task(pipe(up_reader, writer, hold_last=True)),
        ]
        tasks.update(both)
        await asyncio.gather(*both, return_exceptions=True)

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", accepted
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.asyncio
async def test_streamed_calls_one_after_another_share_one_connection() -> None:
    with running_simulator() as simulator:
        async with (
            counting_relay(simulator) as (base_url, accepted),
            upstream_client(base_url) as client,
        ):
            for _ in range(12):
                events = await collect(client.stream_chat(TARGET, HELLO))
                assert isinstance(events[-1], Completed)
                assert events[-1].result.text == "Hello there"
    assert len(accepted) == 1


@pytest.mark.asyncio
async def test_a_finished_stream_leaves_nothing_for_the_loop_to_finalize() -> None:
    """An async generator dropped half-way is closed by the loop's finalizer hook (a self-pipe
    write and a task each); httpx's under ``aiter_raw`` are finished instead."""
    finalized: list[str] = []
    hooks = sys.get_asyncgen_hooks()

    def finalizer(agen: Any) -> None:
        finalized.append(agen.__qualname__)
        assert hooks.finalizer is not None
        hooks.finalizer(agen)

    with running_simulator() as simulator:
        async with upstream_client(simulator) as client:
            await collect(client.stream_chat(TARGET, HELLO))  # the connection is open
            sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=finalizer)
            try:
                for _ in range(5):
                    events = await collect(client.stream_chat(TARGET, HELLO))
                    assert isinstance(events[-1], Completed)
            finally:
                sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=hooks.finalizer)
    assert finalized == []


@pytest.mark.asyncio
async def test_an_upstream_that_keeps_the_body_open_after_done_is_not_waited_for() -> None:
    async def done_then_silence(connection: Any) -> None:
        await connection.head(chunked=True)
        await connection.write(hello_stream())
        await asyncio.sleep(30)  # no last chunk, no close

    async with RawServer([done_then_silence]) as server, upstream_client(server.base_url) as client:
        started = time.monotonic()
        events = await collect(client.stream_chat(TARGET, HELLO))
        took = time.monotonic() - started
    assert isinstance(events[-1], Completed)
    assert events[-1].result.text == "Hello there"
    assert took < AFTER_DONE_WAIT_SECONDS + 2.0
