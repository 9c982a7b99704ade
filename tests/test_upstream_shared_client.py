"""One pooled client per event loop, sending the headers SSE needs."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from conversations.upstream import (
    Completed,
    ModelTarget,
    UpstreamClient,
    aclose_shared_client,
    get_shared_client,
)
from tests.test_upstream_support import (
    API_KEY,
    RawServer,
    answer_stream,
    collect,
    hello_stream,
    make_config,
)

TARGET = ModelTarget("deepseek-flash", thinking=False, reasoning_passback="send")


def test_each_event_loop_gets_its_own_client_and_a_loop_reuses_it() -> None:
    async def twice() -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        first, second = get_shared_client(), get_shared_client()
        await aclose_shared_client()
        return first, second

    a1, a2 = asyncio.run(twice())
    b1, _ = asyncio.run(twice())
    assert a1 is a2
    assert a1 is not b1
    assert a1.is_closed and b1.is_closed


@pytest.mark.asyncio
async def test_the_shared_client_streams_with_identity_encoding_and_bearer_auth() -> None:
    async with RawServer([answer_stream(hello_stream())]) as server:
        client = UpstreamClient(make_config(server.base_url))
        try:
            events = await collect(client.stream_chat(TARGET, [{"role": "user", "content": "Hi"}]))
        finally:
            await aclose_shared_client()
    assert isinstance(events[-1], Completed)
    request = server.requests[0]
    assert (request.method, request.path) == ("POST", "/chat/completions")
    assert request.headers["accept-encoding"] == "identity"
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


@pytest.mark.asyncio
async def test_closing_the_shared_client_lets_the_next_call_open_a_new_one() -> None:
    first = get_shared_client()
    await aclose_shared_client()
    second = get_shared_client()
    await aclose_shared_client()
    assert first is not second


@pytest.mark.asyncio
async def test_a_cookie_the_upstream_sets_is_never_sent_back() -> None:
    """The shared client serves every user of the process: a cookie from one call must not
    ride along on the next (httpx's jar and aiohttp's both kept them)."""
    cookie = {"Set-Cookie": "session=from-upstream; Path=/"}
    async with RawServer([answer_stream(hello_stream(), headers=cookie)]) as server:
        client = UpstreamClient(make_config(server.base_url))
        try:
            for _ in range(2):
                events = await collect(
                    client.stream_chat(TARGET, [{"role": "user", "content": "Hi"}])
                )
                assert isinstance(events[-1], Completed)
        finally:
            await aclose_shared_client()
    assert len(server.requests) == 2
    assert "cookie" not in server.requests[1].headers
