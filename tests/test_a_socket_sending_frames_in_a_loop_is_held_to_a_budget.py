"""A socket's frames are answered within a budget (``consumers.FrameBudget``): 30 at once, then
5 a second; a share link's socket 10 at once, then 1 a second. A frame past it is answered
``rate_limited`` with ``retry_after`` and nothing else is done for it. A visitor not signed in
has each frame of a link's socket (but pings) counted against the address's requests a minute
(``ANONYMOUS_LINK_REQUESTS_PER_MINUTE``), as the handshake was, and is closed 4429 past it.

Before, only the handshake was counted: one anonymous socket sending ``reply.sync`` in a loop
was answered ~107 frames a second, each re-checking its link and reading the reply (~6
queries), and six such sockets slowed the owner's own pages 15-20 times."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from conversations import consumers, sharing
from conversations.models import Conversation, SharingSettings, User
from tests.support import open_socket
from tests.test_public_links_switched_off import anonymous_viewer, frames_until_closed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def _sync(reply_id: str) -> dict[str, Any]:
    return {"type": "reply.sync", "reply_id": reply_id, "after_seq": 0}


async def _answers(socket: Any, count: int) -> list[dict[str, Any]]:
    return [await socket.receive() for _ in range(count)]


async def test_a_signed_in_socket_past_its_budget_is_told_to_wait(
    alice: User, alice_conversation: Conversation
) -> None:
    socket = await open_socket(alice, alice_conversation)
    reply_id = str(uuid.uuid4())
    sent = consumers.FRAMES_AT_ONCE + 15
    for _ in range(sent):
        await socket.send(_sync(reply_id))
    answers = await _answers(socket, sent)
    limited = [a for a in answers if a.get("code") == "rate_limited"]
    assert all(a.get("code") != "rate_limited" for a in answers[: consumers.FRAMES_AT_ONCE])
    assert len(limited) >= 10, answers[-3:]
    assert limited[0]["retry_after"] == 1
    assert limited[0]["message"] == (
        "Too many frames on this connection: wait 1 second before sending another."
    )
    assert limited[0]["request_type"] == "reply.sync"  # which frame it answers
    await asyncio.sleep(1.1)  # given back: answered again
    await socket.send(_sync(reply_id))
    assert (await socket.receive()).get("code") != "rate_limited"
    # Pings are outside the budget (an idle page sends one each half minute).
    for _ in range(consumers.FRAMES_AT_ONCE + 5):
        await socket.send({"type": "ping"})
    assert all(a["type"] == "pong" for a in await _answers(socket, consumers.FRAMES_AT_ONCE + 5))
    await socket.close()


async def test_a_link_socket_has_a_smaller_budget(
    alice: User, charlie: User, alice_conversation: Conversation
) -> None:
    _, token = await sync_to_async(sharing.create_share_link)(alice, alice_conversation.id)
    viewer = await open_socket(charlie, alice_conversation, link=token)
    reply_id = str(uuid.uuid4())
    sent = consumers.LINK_FRAMES_AT_ONCE + 10
    for _ in range(sent):
        await viewer.send(_sync(reply_id))
    answers = await _answers(viewer, sent)
    assert all(a.get("code") != "rate_limited" for a in answers[: consumers.LINK_FRAMES_AT_ONCE])
    assert sum(a.get("code") == "rate_limited" for a in answers) >= 8, answers[-3:]
    await viewer.close()


def _seconds_left_of_the_minute() -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 60 - mod(extract(epoch FROM now()), 60)")
        return float(cursor.fetchone()[0])


async def test_an_anonymous_link_sockets_frames_count_as_its_addresses_requests(
    alice: User, alice_conversation: Conversation, settings: Any
) -> None:
    settings.ANONYMOUS_LINK_REQUESTS_PER_MINUTE = 5
    await SharingSettings.objects.aupdate_or_create(pk=1, defaults={"allow_public_links": True})
    _, token = await sync_to_async(sharing.create_share_link)(alice, alice_conversation.id)
    left = await sync_to_async(_seconds_left_of_the_minute)()
    if left < 15:  # the handshake and the frames in one minute
        await asyncio.sleep(left + 0.2)
    started = time.monotonic()
    anonymous = await anonymous_viewer(alice_conversation, token)  # the minute's first
    reply_id = str(uuid.uuid4())
    for _ in range(4):  # the second to the fifth: answered
        await anonymous.send_json_to(_sync(reply_id))
        answer = json.loads(await anonymous.receive_from(timeout=10))
        assert answer.get("code") != "rate_limited", answer
    for _ in range(3):  # pings are not counted
        await anonymous.send_json_to({"type": "ping"})
        assert json.loads(await anonymous.receive_from(timeout=10))["type"] == "pong"
    await anonymous.send_json_to(_sync(reply_id))  # the sixth: refused, and the socket closed
    frames = await frames_until_closed(anonymous)
    assert time.monotonic() - started < 15
    assert frames[-1] == {"type": "closed", "code": 4429}
    assert frames[0]["code"] == "rate_limited" and frames[0]["retry_after"] >= 1
    assert frames[0]["message"].startswith("Too many requests for shared conversations")
