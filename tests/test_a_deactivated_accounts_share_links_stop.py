"""A share link of a deactivated account's conversation stops opening — its page, its
messages, and a socket watching through it — until the account is reactivated: the admin who
deactivates an account (someone who left, a compromised login) stops what it publishes. Before,
its public links went on opening for anyone. Its team shares are kept (the team's record)."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from conversations import sharing
from conversations.models import Conversation, User
from tests.support import admin_form, client_for, closed_code, open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def set_active(staff: User, user: User, active: bool) -> None:
    admin = client_for(staff)
    page = f"/admin/conversations/user/{user.pk}/change/"
    response = admin.post(page, admin_form(admin, page, is_active="on" if active else None))
    assert response.status_code == 302, response.content.decode()[:2000]


async def test_a_deactivated_owners_links_stop_and_open_again_when_reactivated(
    alice: User, bob: User, staff: User, alice_conversation: Conversation, generation_service: Any
) -> None:
    _, token = await sync_to_async(sharing.create_share_link)(alice, alice_conversation.id)
    reader = await sync_to_async(client_for)(bob)
    visitor = Client()
    assert (await sync_to_async(reader.get)(f"/s/{token}/")).status_code == 200
    viewer = await open_socket(bob, alice_conversation, link=token)

    await sync_to_async(set_active)(staff, alice, False)
    assert (await viewer.until_type("error"))["code"] == "access_revoked"
    assert await closed_code(viewer) == 4403
    for client in (reader, visitor):
        assert (await sync_to_async(client.get)(f"/s/{token}/")).status_code == 404
        page = await sync_to_async(client.get)(f"/s/{token}/messages.json")
        assert page.status_code == 404

    await sync_to_async(set_active)(staff, alice, True)
    assert (await sync_to_async(reader.get)(f"/s/{token}/")).status_code == 200
    again = await open_socket(bob, alice_conversation, link=token)
    await again.close()
