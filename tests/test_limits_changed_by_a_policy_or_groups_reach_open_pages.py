"""An account's open pages hear that its limits changed (``account.updated``: they read again
what they may send) not only when its own limits are edited, but when a policy that governs
it changes, is deleted, or its groups change on its page; pages of accounts the change does
not concern hear nothing."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group

from conversations.models import Policy, User
from tests.support import Socket, admin_form, client_for, open_account_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def team_policy(member: User) -> tuple[Policy, Group]:
    group = Group.objects.create(name="eng")
    member.groups.add(group)
    policy = Policy.objects.create(name="Tight", tokens_per_day=20_000)
    policy.groups.add(group)
    return policy, group


async def told_nothing(page: Socket) -> None:
    while not await page.communicator.receive_nothing(timeout=1.5):
        frame = await page.receive()
        assert frame["type"] != "account.updated", page.frames


async def post(staff: User, page: str, **changes: Any) -> None:
    client = await sync_to_async(client_for)(staff)
    form = await sync_to_async(admin_form)(client, page, **changes)
    response = await sync_to_async(client.post)(page, form)
    assert response.status_code == 302, response.content.decode()[:2000]


async def test_a_groups_policy_changed_or_deleted_reaches_its_members_pages(
    alice: User, bob: User, staff: User, generation_service: Any
) -> None:
    policy, _ = await sync_to_async(team_policy)(alice)
    alices, bobs = await open_account_socket(alice), await open_account_socket(bob)
    await post(staff, f"/admin/conversations/policy/{policy.pk}/change/", tokens_per_day="5000")
    updated = await alices.until_type("account.updated")
    assert updated["suspended"] is False
    await told_nothing(bobs)

    alices.frames.clear()
    client = await sync_to_async(client_for)(staff)
    response = await sync_to_async(client.post)(
        f"/admin/conversations/policy/{policy.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    await alices.until_type("account.updated")
    await told_nothing(bobs)
    await alices.close()
    await bobs.close()


async def test_an_account_moved_into_a_group_hears_it(
    alice: User, bob: User, staff: User, generation_service: Any
) -> None:
    _, group = await sync_to_async(team_policy)(alice)
    bobs = await open_account_socket(bob)
    await post(staff, f"/admin/conversations/user/{bob.pk}/change/", groups=[str(group.pk)])
    await bobs.until_type("account.updated")
    await bobs.close()
    assert await sync_to_async(lambda: list(bob.groups.all()))() == [group]
