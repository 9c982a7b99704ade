"""A share link's socket is closed the moment its link expires, mid-stream too; an expiry the
owner extends (in the admin) keeps it open."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from conversations import sharing
from conversations.models import Conversation, ShareLink, User
from tests.support import Socket, client_for, open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]
ANSWER = " ".join(f"step{i}" for i in range(200))


async def expiring_link(owner: User, conversation: Conversation, seconds: float) -> str:
    link, token = await sync_to_async(sharing.create_share_link)(
        owner, conversation.id, expires_in_days=1
    )
    # As if the link had been made a day ago: it expires in a few seconds.
    await ShareLink.objects.filter(pk=link.pk).aupdate(
        expires_at=timezone.now() + timedelta(seconds=seconds)
    )
    return token


async def frames_until_closed(socket: Socket, timeout: float) -> list[tuple[float, dict[str, Any]]]:
    """Every frame until the close, each with the time it arrived."""
    loop = asyncio.get_running_loop()
    got: list[tuple[float, dict[str, Any]]] = []
    deadline = loop.time() + timeout
    while (left := deadline - loop.time()) > 0:
        try:
            message = await socket.communicator.receive_output(timeout=left)
        except TimeoutError:
            break
        if message["type"] == "websocket.close":
            got.append((loop.time(), {"type": "closed", "code": message.get("code")}))
            break
        got.append((loop.time(), json.loads(message["text"])))
    return got


async def test_a_link_socket_is_closed_when_its_link_expires_mid_stream(
    alice: User,
    charlie: User,
    alice_conversation: Conversation,
    slow_simulator: str,
    generation_service: Any,
) -> None:
    # Timed from the link's making (it expires 2 s after): the sockets' opening and the send
    # that follow take a part of those 2 s, more on a loaded machine.
    started = asyncio.get_running_loop().time()
    token = await expiring_link(alice, alice_conversation, seconds=2)
    viewer = await open_socket(charlie, alice_conversation, link=token)
    owner = await open_socket(alice, alice_conversation)
    await owner.send(
        {"type": "message.send", "client_id": "a1", "content": f"[[sim: say={ANSWER}]]"}
    )

    frames = await frames_until_closed(viewer, timeout=15)

    kinds = [frame["type"] for _, frame in frames]
    assert kinds[-1] == "closed" and frames[-1][1]["code"] == 4403, kinds
    assert frames[-2][1]["type"] == "error" and frames[-2][1]["code"] == "access_revoked"
    assert "reply.delta" in kinds, "the viewer watched the reply until the link expired"
    closed_after = frames[-1][0] - started
    assert 1.5 < closed_after < 3.5, f"closed {closed_after:.1f} s in; the link expired at 2 s"
    # The reply itself goes on for its owner.
    assert (await owner.until_reply_ends())["type"] == "reply.completed"
    await owner.close()


async def test_an_expiry_extended_in_the_admin_keeps_the_socket_open(
    alice: User,
    charlie: User,
    staff: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
) -> None:
    token = await expiring_link(alice, alice_conversation, seconds=2)
    viewer = await open_socket(charlie, alice_conversation, link=token)
    link = await ShareLink.objects.aget(conversation=alice_conversation)
    later = timezone.localtime(timezone.now() + timedelta(days=3))
    admin = await sync_to_async(client_for)(staff)
    response = await sync_to_async(admin.post)(
        f"/admin/conversations/sharelink/{link.pk}/change/",
        {"expires_at_0": later.strftime("%Y-%m-%d"), "expires_at_1": later.strftime("%H:%M:%S")},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    await asyncio.sleep(3)  # past the old expiry

    owner = await open_socket(alice, alice_conversation)
    await owner.send(
        {"type": "message.send", "client_id": "a1", "content": "[[sim: say=Still here.]]"}
    )
    end = await viewer.until_reply_ends()
    assert end["type"] == "reply.completed"
    await viewer.close()
    await owner.close()


async def test_a_link_socket_that_acts_after_expiry_is_closed(
    alice: User,
    charlie: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
) -> None:
    """The socket's timer is not the only guard: a frame from a socket whose link has expired
    closes it too (here the timer was set from the expiry the link had when it connected)."""
    link, token = await sync_to_async(sharing.create_share_link)(
        alice, alice_conversation.id, expires_in_days=1
    )
    viewer = await open_socket(charlie, alice_conversation, link=token)
    owner = await open_socket(alice, alice_conversation)
    await owner.send({"type": "message.send", "client_id": "a1", "content": "[[sim: say=Hi.]]"})
    end = await owner.until_reply_ends()
    await viewer.until_reply_ends()
    # Expired without an announcement (as a clock passing the expiry would leave it).
    await ShareLink.objects.filter(pk=link.pk).aupdate(expires_at=timezone.now())
    await viewer.send({"type": "reply.sync", "reply_id": end["reply_id"], "after_seq": 0})

    frames = [frame for _, frame in await frames_until_closed(viewer, timeout=10)]

    assert [f["type"] for f in frames] == ["error", "closed"], frames
    assert frames[0]["code"] == "access_revoked" and frames[1]["code"] == 4403
    await owner.close()
