"""The last team deleted gives every account every conversation shared with no team: each
account's open lists are told in one send to its group (a batch of ``shared.listed`` frames),
after the delete commits, not one send per conversation and account awaited one after the
other inside the request (forty conversations and two accounts were eighty sends in a row).
Each page still receives a ``shared.listed`` frame per conversation, as before."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from conversations.generation import account_group
from conversations.models import Conversation, ModelConfig, Team, User
from tests.support import client_for, open_account_socket
from tests.test_a_teammates_lists_follow_what_is_shared_with_them import nothing_shared_told

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

SHARED_WITH_NO_TEAM = 40


async def sent_to(channel: str) -> list[dict[str, Any]]:
    """What the layer delivered to ``channel``, until it is quiet for a second."""
    layer = get_channel_layer()
    received = []
    while True:
        try:
            received.append(await asyncio.wait_for(layer.receive(channel), timeout=1))
        except TimeoutError:
            return received


async def test_each_account_is_told_of_what_it_now_sees_in_one_send(
    alice: User,
    bob: User,
    charlie: User,
    staff: User,
    chat_model: ModelConfig,
    simulator: str,
    generation_service: Any,
) -> None:
    ops = await Team.objects.acreate(name="ops")
    await ops.members.aset([alice])
    shared = await Conversation.objects.abulk_create(
        Conversation(owner=alice, model=chat_model, title=f"Notes {n}", visibility="team")
        for n in range(SHARED_WITH_NO_TEAM)
    )
    ids = {str(conversation.id) for conversation in shared}
    pages = {user.username: await open_account_socket(user) for user in (bob, charlie)}
    # What the layer carries to Charlie's group, as a worker's relay receives it.
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(account_group(charlie.pk), channel)

    admin = await sync_to_async(client_for)(staff)
    response = await sync_to_async(admin.post)(
        f"/admin/conversations/team/{ops.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302

    (event,) = await sent_to(channel)
    assert event["type"] == "account.batch"
    assert {frame["type"] for frame in event["frames"]} == {"shared.listed"}
    assert {frame["conversation"]["id"] for frame in event["frames"]} == ids
    for page in pages.values():
        told = [await page.until_type("shared.listed") for _ in range(SHARED_WITH_NO_TEAM)]
        assert {frame["conversation"]["id"] for frame in told} == ids
        assert {frame["conversation"]["owner"] for frame in told} == {"Alice"}
        await nothing_shared_told(page)
        await page.close()
