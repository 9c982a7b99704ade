"""An admin saves the change page of a policy (a model, a team, an account) that another admin deleted
while the page was open, the delete committing while the save is under way: the save is
refused with a form error saying the row was deleted by someone else, and the row stays
deleted. The save found no row to update and inserted it again (Django's update-then-insert),
so the deleted policy came back without a word, and without the users and groups its delete
had detached. Real concurrency: the delete and the save, each a request on its own connection,
are held at the same point by a third connection that locks the row."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from django.contrib.auth.models import Group
from django.db import connection, connections, models
from django.test import Client

from conversations.models import AuditEntry, ModelConfig, Policy, Team, User
from tests.support import admin_form, client_for, make_user
from tests.test_two_admins_move_the_default_policy_at_once import wait_for_lock_waiters

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def a_policy() -> models.Model:
    policy = Policy.objects.create(name="strict", tokens_per_day=1000)
    policy.groups.add(Group.objects.create(name="interns"))
    return policy


def a_model() -> models.Model:
    return ModelConfig.objects.create(name="spare", display_name="Spare", upstream_model="x")


def a_team() -> models.Model:
    return Team.objects.create(name="ops")


def an_account() -> models.Model:
    return make_user("bob")


@pytest.mark.parametrize(
    ("make", "changes"),
    [
        (a_policy, {"tokens_per_day": "500"}),
        (a_model, {"display_name": "Spare (renamed)"}),
        (a_team, {"name": "operations"}),
        (an_account, {"email": "bob@example.com"}),  # came back with its password
    ],
    ids=["policy", "model", "team", "account"],
)
def test_a_save_after_another_admin_deleted_the_row_is_refused_and_it_stays_deleted(
    staff: User, make: Any, changes: dict[str, str]
) -> None:
    row = make()
    opts = row._meta
    change = f"/admin/conversations/{opts.model_name}/{row.pk}/change/"
    delete = f"/admin/conversations/{opts.model_name}/{row.pk}/delete/"
    form = admin_form(client_for(staff), change, **changes)  # the page as it was opened
    responses: dict[str, Any] = {}

    def post(who: str, page: str, data: dict[str, Any]) -> None:
        client = Client(raise_request_exception=False)
        client.force_login(staff)
        try:
            responses[who] = client.post(page, data)
        finally:
            connections.close_all()

    params = {**connection.get_connection_params(), "autocommit": False}
    with psycopg.connect(**params) as holder:
        holder.execute(f"SELECT 1 FROM {opts.db_table} WHERE id = %s FOR UPDATE", [row.pk])
        # Bob's delete comes first to the row, and waits; Alice's save comes after his.
        bob = threading.Thread(target=post, args=("bob", delete, {"post": "yes"}))
        bob.start()
        wait_for_lock_waiters(1)
        alice = threading.Thread(target=post, args=("alice", change, form))
        alice.start()
        wait_for_lock_waiters(2)
        holder.rollback()
        for thread in (bob, alice):
            thread.join(timeout=30)

    assert responses["bob"].status_code == 302
    assert responses["alice"].status_code == 200  # the form again, with the error
    page = responses["alice"].content.decode()
    assert f"This {opts.verbose_name} was deleted by someone else" in page, page[:3000]
    assert not type(row).objects.filter(pk=row.pk).exists()
    # The log says it was deleted, and nothing after.
    entries = AuditEntry.objects.filter(target_type=opts.model_name, target_id=str(row.pk))
    assert [e.action for e in entries.order_by("at", "pk")] == ["delete"]


def test_a_save_of_a_row_still_there_goes_through(staff: User) -> None:
    policy = a_policy()
    client = client_for(staff)
    change = f"/admin/conversations/policy/{policy.pk}/change/"
    response = client.post(change, admin_form(client, change, tokens_per_day="500"))
    assert response.status_code == 302
    assert Policy.objects.get(pk=policy.pk).tokens_per_day == 500
