"""A worker keeps at most WEBSOCKETS_PER_ACCOUNT conversation sockets open per signed-in account,
and WEBSOCKETS_PER_ANONYMOUS_ADDRESS per client address for anonymous viewers of public links.
One more is told why (an `error` frame, `too_many_connections`) and closed with 4429, and
nothing else is done for it. Every socket that ends frees its place: closed by its client or
dropped, refused or closed by the server, or failed while connecting. Before, an account, or
anyone holding a public link, could open sockets until the worker ran out of memory."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.utils import timezone

from conversations import sharing
from conversations.models import Conversation, ShareLink, SharingSettings, User
from simulator.testing import running_simulator
from tests.servers import daphne_worker, free_port, session_cookie
from tests.support import SIM_KEY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]
PER_ACCOUNT = 3
PER_ADDRESS = 2
CAPS = {
    "WEBSOCKETS_PER_ACCOUNT": str(PER_ACCOUNT),
    "WEBSOCKETS_PER_ANONYMOUS_ADDRESS": str(PER_ADDRESS),
}


@pytest.fixture
def worker(chat_model: Any) -> Iterator[str]:
    """A worker behind which X-Forwarded-For names the client (as the image runs daphne)."""
    with (
        running_simulator(api_key=SIM_KEY) as upstream,
        daphne_worker(upstream, SIM_KEY, daphne_options=["--proxy-headers"], **CAPS) as base,
    ):
        yield base


async def connect(
    base: str,
    conversation: Conversation | Any,
    *,
    cookie: str | None = None,
    link: str | None = None,
    address: str = "203.0.113.1",
) -> tuple[Any, dict[str, Any]]:
    """A socket, and its first frame (``{"type": "closed", "code": …}`` if it was closed
    without one)."""
    headers = {"X-Forwarded-For": address}
    if cookie is not None:
        headers["Cookie"] = f"sessionid={cookie}"
    query = f"?link={link}" if link else ""
    conversation_id = getattr(conversation, "id", conversation)
    connection = await websockets.connect(
        base.replace("http://", "ws://") + f"/ws/conversations/{conversation_id}/{query}",
        origin=base,  # type: ignore[arg-type]
        additional_headers=headers,
    )
    return connection, await next_frame(connection)


async def next_frame(connection: Any) -> dict[str, Any]:
    try:
        return dict(json.loads(await asyncio.wait_for(connection.recv(), 10)))
    except websockets.ConnectionClosed as closed:
        return {"type": "closed", "code": closed.rcvd.code if closed.rcvd else None}


async def assert_too_many(connection: Any, first: dict[str, Any], named: str) -> None:
    assert first["type"] == "error" and first["code"] == "too_many_connections", first
    assert named in first["message"], first
    assert await next_frame(connection) == {"type": "closed", "code": 4429}


async def open_ready(base: str, conversation: Conversation, **options: Any) -> Any:
    connection, first = await connect(base, conversation, **options)
    assert first["type"] == "ready", first
    return connection


async def open_once_freed(base: str, conversation: Conversation, **options: Any) -> Any:
    """A socket let in once a place is free again: the worker frees an ended socket's place
    when it notices the end (a dropped one: when its connection is reset), which a loaded
    machine may take a moment to do. Refused meanwhile, it asks again, for at most 15 s."""
    deadline = time.monotonic() + 15
    while True:
        connection, first = await connect(base, conversation, **options)
        if first.get("code") != "too_many_connections" or time.monotonic() > deadline:
            assert first["type"] == "ready", first
            return connection
        await next_frame(connection)  # its close
        await asyncio.sleep(0.1)


async def test_an_account_past_its_sockets_is_told_why_and_a_closed_socket_frees_a_place(
    alice: User, bob: User, alice_conversation: Conversation, worker: str
) -> None:
    cookie = await sync_to_async(session_cookie)(alice)
    # From several addresses: an account's sockets are counted whatever their address.
    held = [
        await open_ready(worker, alice_conversation, cookie=cookie, address=f"203.0.113.{i}")
        for i in range(PER_ACCOUNT)
    ]

    extra, first = await connect(worker, alice_conversation, cookie=cookie, address="198.51.100.9")
    await assert_too_many(extra, first, "your account")
    # Another account, from the same address, is not affected.
    bobs = await Conversation.objects.acreate(
        owner=bob, model=alice_conversation.model, title="Bob's"
    )
    bob_socket = await open_ready(
        worker, bobs, cookie=await sync_to_async(session_cookie)(bob), address="203.0.113.0"
    )

    # One closed by its client, one dropped without a close: both places come back.
    await held.pop().close()
    held.pop().transport.abort()
    held.append(await open_once_freed(worker, alice_conversation, cookie=cookie))
    held.append(await open_once_freed(worker, alice_conversation, cookie=cookie))
    extra, first = await connect(worker, alice_conversation, cookie=cookie)
    await assert_too_many(extra, first, "your account")
    for connection in [*held, bob_socket]:
        await connection.close()


async def test_anonymous_viewers_of_a_public_link_are_counted_per_address(
    alice: User, alice_conversation: Conversation, worker: str
) -> None:
    await SharingSettings.objects.aupdate_or_create(pk=1, defaults={"allow_public_links": True})
    _, token = await sync_to_async(sharing.create_share_link)(alice, alice_conversation.id)
    held = [
        await open_ready(worker, alice_conversation, link=token, address="203.0.113.1")
        for _ in range(PER_ADDRESS)
    ]

    extra, first = await connect(worker, alice_conversation, link=token, address="203.0.113.1")
    await assert_too_many(extra, first, "your address")
    # Another address has places of its own; a signed-in viewer counts as its account.
    held.append(await open_ready(worker, alice_conversation, link=token, address="203.0.113.2"))
    held.append(
        await open_ready(
            worker,
            alice_conversation,
            link=token,
            address="203.0.113.1",
            cookie=await sync_to_async(session_cookie)(alice),
        )
    )

    await held.pop(0).close()
    held.append(
        await open_once_freed(worker, alice_conversation, link=token, address="203.0.113.1")
    )
    for connection in held:
        await connection.close()


async def test_sockets_the_server_refuses_or_closes_free_their_places(
    alice: User, alice_conversation: Conversation, worker: str
) -> None:
    await SharingSettings.objects.aupdate_or_create(pk=1, defaults={"allow_public_links": True})
    address = "203.0.113.7"
    for _ in range(PER_ADDRESS + 2):
        # Refused: no session and no link (4401), no such conversation (4404).
        _, first = await connect(worker, alice_conversation, address=address)
        assert first == {"type": "closed", "code": 4401}
        _, first = await connect(
            worker, "00000000-0000-0000-0000-000000000000", link="nothing", address=address
        )
        assert first == {"type": "closed", "code": 4404}
    for _ in range(2):
        # Closed by the server when their link expires (4403).
        link, token = await sync_to_async(sharing.create_share_link)(
            alice, alice_conversation.id, expires_in_days=1
        )
        await ShareLink.objects.filter(pk=link.pk).aupdate(
            expires_at=timezone.now() + timedelta(seconds=1.5)
        )
        viewers = [
            await open_once_freed(worker, alice_conversation, link=token, address=address)
            for _ in range(PER_ADDRESS)
        ]
        for viewer in viewers:
            assert (await next_frame(viewer))["code"] == "access_revoked"
            assert await next_frame(viewer) == {"type": "closed", "code": 4403}

    _, token = await sync_to_async(sharing.create_share_link)(alice, alice_conversation.id)
    held = [
        await open_once_freed(worker, alice_conversation, link=token, address=address)
        for _ in range(PER_ADDRESS)
    ]
    extra, first = await connect(worker, alice_conversation, link=token, address=address)
    await assert_too_many(extra, first, "your address")
    for connection in held:
        await connection.close()


def start_redis(port: int) -> subprocess.Popen[bytes]:
    server = shutil.which("redis-server")
    assert server, "redis-server is needed (the machine's Redis package)"
    process = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while (
        subprocess.run(
            ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True
        ).stdout.strip()
        != "PONG"
    ):
        assert time.monotonic() < deadline, "the private Redis did not start"
        time.sleep(0.05)
    return process


@contextmanager
def private_redis(port: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """A Redis of this test's own, to be stopped and started again (the last one started is
    stopped at the end)."""
    processes = [start_redis(port)]
    try:
        yield processes
    finally:
        processes[-1].kill()
        processes[-1].wait()


async def test_sockets_that_fail_under_the_server_free_their_places(
    alice: User, alice_conversation: Conversation, chat_model: Any
) -> None:
    cookie = await sync_to_async(session_cookie)(alice)
    port = free_port()
    with (
        running_simulator(api_key=SIM_KEY) as upstream,
        private_redis(port) as redis,
        daphne_worker(upstream, SIM_KEY, REDIS_URL=f"redis://127.0.0.1:{port}/0", **CAPS) as base,
    ):
        held = [await open_ready(base, alice_conversation, cookie=cookie) for _ in range(2)]
        redis[-1].kill()
        redis[-1].wait()
        # Redis gone, the sockets' channel-layer receive fails and Channels ends them without
        # calling ``disconnect``; sockets opened meanwhile fail as they connect.
        for connection in held:
            assert (await next_frame(connection))["type"] == "closed"
        for _ in range(PER_ACCOUNT + 1):
            try:
                _, first = await connect(base, alice_conversation, cookie=cookie)
            except (websockets.InvalidStatus, websockets.InvalidMessage):
                continue
            assert first["type"] == "closed" and first["code"] != 4429, first
        redis.append(start_redis(port))

        # None of them kept a place: the account opens all it may again. (The first uses of
        # the worker's pooled Redis connections, broken by the restart, fail a few more: refused,
        # or the handshake's connection closed before its answer.)
        held = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                connection, first = await connect(base, alice_conversation, cookie=cookie)
            except (websockets.InvalidStatus, websockets.InvalidMessage):
                await asyncio.sleep(0.2)
                continue
            if first.get("code") == "too_many_connections":
                # A socket still failing against the broken pool holds its place until it
                # ends: for a moment, not for good.
                await asyncio.sleep(0.5)
                continue
            assert first["type"] != "error", first
            if first["type"] == "ready":
                held.append(connection)
                if len(held) == PER_ACCOUNT:
                    break
        assert len(held) == PER_ACCOUNT
        extra, first = await connect(base, alice_conversation, cookie=cookie)
        await assert_too_many(extra, first, "your account")
        for connection in held:
            await connection.close()


async def test_anonymous_viewers_from_one_ipv6_64_share_its_places(
    alice: User, alice_conversation: Conversation, worker: str
) -> None:
    """An IPv6 host picks new addresses in its /64 at will: counted one address at a time, it
    opened sockets without end."""
    await SharingSettings.objects.aupdate_or_create(pk=1, defaults={"allow_public_links": True})
    _, token = await sync_to_async(sharing.create_share_link)(alice, alice_conversation.id)
    held = [
        await open_ready(worker, alice_conversation, link=token, address=f"2001:db8:9:9::{n + 1}")
        for n in range(PER_ADDRESS)
    ]
    extra, first = await connect(
        worker, alice_conversation, link=token, address="2001:db8:9:9:aaaa::1"
    )
    await assert_too_many(extra, first, "your address")
    held.append(await open_ready(worker, alice_conversation, link=token, address="2001:db8:9:a::1"))
    for connection in held:
        await connection.close()
