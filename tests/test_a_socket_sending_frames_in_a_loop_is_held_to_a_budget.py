"""A holder's frames are answered within a budget (``generation.FrameBudget``), shared by all
its sockets in a worker: an account's 200 at once, then 10 a second; an address's anonymous
viewers of public links 10 at once, then 1 a second. A frame past it is answered
``rate_limited`` with ``retry_after`` (a ``reply.sync`` naming its reply, which the page asks
for again then) and nothing else is done for it. Pings are not counted.

Before, nothing was counted but an anonymous socket's handshake: one socket sending
``reply.sync`` in a loop was answered ~107 frames a second, each re-checking its link and
reading the reply (~6 queries), and six such sockets slowed the owner's own pages 15-20
times."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import generation, sharing
from conversations.models import Conversation, SharingSettings, User
from tests.support import open_socket
from tests.test_public_links_switched_off import anonymous_viewer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def _sync(reply_id: str) -> dict[str, Any]:
    return {"type": "reply.sync", "reply_id": reply_id, "after_seq": 0}


@pytest.fixture
def slow_refill(monkeypatch: pytest.MonkeyPatch) -> None:
    """Next to nothing given back during the test (a loaded machine answers slowly): what is
    answered is the burst."""
    monkeypatch.setattr(generation, "ACCOUNT_FRAMES_PER_SECOND", 0.01)
    monkeypatch.setattr(generation, "ADDRESS_FRAMES_PER_SECOND", 0.01)


async def test_an_accounts_sockets_share_one_budget(
    alice: User, alice_conversation: Conversation, generation_service: Any, slow_refill: None
) -> None:
    first = await open_socket(alice, alice_conversation)
    second = await open_socket(alice, alice_conversation)  # another tab: no fresh budget
    reply_id = str(uuid.uuid4())
    burst = generation.ACCOUNT_FRAMES_AT_ONCE
    for i in range(burst + 10):
        await (first if i % 2 else second).send(_sync(reply_id))
    answers = [await first.receive() for _ in range((burst + 10) // 2)]
    answers += [await second.receive() for _ in range((burst + 10) // 2)]
    limited = [a for a in answers if a.get("code") == "rate_limited"]
    assert len(limited) == 10, answers
    assert limited[0]["retry_after"] >= 1
    assert limited[0]["message"].startswith("Too many frames from your account: wait ")
    assert limited[0]["request_type"] == "reply.sync" and limited[0]["reply_id"] == reply_id
    # Pings are outside the budget (an idle page sends one each half minute).
    for _ in range(5):
        await first.send({"type": "ping"})
    assert [(await first.receive())["type"] for _ in range(5)] == ["pong"] * 5
    await first.close()
    await second.close()


async def test_a_spent_budget_is_given_back_as_time_passes(
    alice: User, alice_conversation: Conversation, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    places = generation_service.places
    budget_holder = f"account:{alice.pk}"
    places.frames_wait(budget_holder)  # made, then spent from outside the socket
    places.frames[budget_holder].left = 0
    reply_id = str(uuid.uuid4())
    await socket.send(_sync(reply_id))
    assert (await socket.receive())["code"] == "rate_limited"
    await asyncio.sleep(1.0 / generation.ACCOUNT_FRAMES_PER_SECOND + 0.2)
    await socket.send(_sync(reply_id))
    assert (await socket.receive()).get("code") != "rate_limited"
    await socket.close()


async def test_an_addresses_anonymous_link_sockets_share_a_smaller_budget(
    alice: User, alice_conversation: Conversation, generation_service: Any, slow_refill: None
) -> None:
    await SharingSettings.objects.aupdate_or_create(pk=1, defaults={"allow_public_links": True})
    _, token = await sync_to_async(sharing.create_share_link)(alice, alice_conversation.id)
    viewers = [await anonymous_viewer(alice_conversation, token) for _ in range(3)]
    reply_id = str(uuid.uuid4())
    burst = generation.ADDRESS_FRAMES_AT_ONCE
    for i in range(burst + 5):
        await viewers[i % 3].send_json_to(_sync(reply_id))
    answers = []
    for i in range(burst + 5):
        answers.append(json.loads(await viewers[i % 3].receive_from(timeout=10)))
    limited = [a for a in answers if a.get("code") == "rate_limited"]
    assert len(limited) == 5, answers
    assert limited[0]["message"].startswith("Too many frames from your address: wait ")
    for viewer in viewers:
        await viewer.disconnect()
