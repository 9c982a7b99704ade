"""Two admins create the first two teams at the same moment, or delete the last two: whether a
team is the first or the last decides who sees every conversation shared with no team, and so
what their lists are told. Each admin decided it alone, from the teams committed when it
looked: both creates found no team and both announced (Charlie's list told twice), both
deletes found the other's team and neither announced (the conversation became everyone's, and
no one's list showed it). Real concurrency: two threads, each with its own connection, held at
the same point by a third connection that locks the audit log, which both write before they
commit."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections
from django.test import Client

from conversations import sharing
from conversations.models import AuditEntry, Conversation, Team, User
from tests.support import admin_form, client_for, open_account_socket
from tests.test_a_teammates_lists_follow_what_is_shared_with_them import (
    listed,
    nothing_shared_told,
    unlisted,
)
from tests.test_two_admins_move_the_default_policy_at_once import wait_for_lock_waiters

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]


def at_once(staff: User, *posts: tuple[str, dict[str, Any]]) -> list[int]:
    """Each (page, form) posted by its own admin in its own thread, both held where they
    write the audit log until both have come that far (or wait elsewhere); their statuses."""
    statuses: list[int] = [0] * len(posts)
    forms = [(page, form) for page, form in posts]

    def post(index: int) -> None:
        client = Client(raise_request_exception=False)
        client.force_login(staff)
        try:
            page, form = forms[index]
            statuses[index] = client.post(page, form).status_code
        finally:
            connections.close_all()

    table = AuditEntry._meta.db_table
    params = {**connection.get_connection_params(), "autocommit": False}
    with psycopg.connect(**params) as holder:
        holder.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        threads = [threading.Thread(target=post, args=(i,)) for i in range(len(posts))]
        for count, thread in enumerate(threads, start=1):
            thread.start()
            wait_for_lock_waiters(count)
        holder.rollback()
        for thread in threads:
            thread.join(timeout=30)
    return statuses


async def test_two_first_teams_created_at_once_are_announced_once(
    alice: User,
    bob: User,
    charlie: User,
    staff: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
) -> None:
    await sync_to_async(sharing.set_visibility)(alice, alice_conversation.id, "team")
    charlies_welcome = await open_account_socket(charlie)
    admin = await sync_to_async(client_for)(staff)
    page = "/admin/conversations/team/add/"
    ops = await sync_to_async(admin_form)(admin, page, name="ops", members=[alice.pk])
    dev = await sync_to_async(admin_form)(admin, page, name="dev", members=[bob.pk])

    statuses = await sync_to_async(at_once)(staff, (page, ops), (page, dev))

    assert statuses == [302, 302]
    assert await Team.objects.acount() == 2
    assert await charlies_welcome.until_type("shared.unlisted") == unlisted(alice_conversation)
    await nothing_shared_told(charlies_welcome)  # the second team was not the first
    await charlies_welcome.close()


async def test_the_last_two_teams_deleted_at_once_give_everyone_what_no_team_has(
    alice: User,
    bob: User,
    charlie: User,
    staff: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
) -> None:
    ops = await Team.objects.acreate(name="ops")
    await ops.members.aset([alice])
    dev = await Team.objects.acreate(name="dev")
    await dev.members.aset([bob])
    # Shared with no team: while there are teams, with no one but Alice.
    await Conversation.objects.filter(pk=alice_conversation.pk).aupdate(visibility="team")
    charlies_welcome = await open_account_socket(charlie)

    statuses = await sync_to_async(at_once)(
        staff,
        (f"/admin/conversations/team/{ops.pk}/delete/", {"post": "yes"}),
        (f"/admin/conversations/team/{dev.pk}/delete/", {"post": "yes"}),
    )

    assert statuses == [302, 302]
    assert not await Team.objects.aexists()
    # No team is left: the conversation is everyone's, and Charlie's list shows it.
    told = await charlies_welcome.until_type("shared.listed", timeout=10)
    assert told == listed(alice_conversation, "Deploy notes")
    await nothing_shared_told(charlies_welcome)
    await charlies_welcome.close()
