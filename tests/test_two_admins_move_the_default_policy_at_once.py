"""Two admins move the default policy at the same moment, each to a different policy: both
saves go through (no 500 from the one-default constraint), the later one wins, and there is
still exactly one default. Real concurrency: two threads, each with its own connection, held
at the same point by a third connection that locks the current default row."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from django.db import connection, connections
from django.test import Client

from conversations.models import AuditEntry, Policy, User
from tests.test_there_is_always_one_default_policy import policy_form

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def wait_for_lock_waiters(count: int) -> None:
    """Until ``count`` backends of the test database wait on a lock (a row, an advisory lock)."""
    params = {**connection.get_connection_params(), "autocommit": True}
    deadline = time.monotonic() + 20
    with psycopg.connect(**params) as observer:
        while True:
            row = observer.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            ).fetchone()
            if row and row[0] >= count:
                return
            assert time.monotonic() < deadline, f"{count} saves never came to wait"
            time.sleep(0.02)


def test_two_admins_moving_the_default_at_once_both_succeed_and_the_later_wins(
    staff: User,
) -> None:
    Policy.objects.all().delete()
    old = Policy.objects.create(name="standard", is_default=True)
    first = Policy.objects.create(name="strict", tokens_per_day=1000)
    second = Policy.objects.create(name="generous", tokens_per_day=10**6)
    statuses: dict[str, Any] = {}

    def move_default_to(policy: Policy) -> None:
        client = Client(raise_request_exception=False)
        client.force_login(staff)
        try:
            response = client.post(
                f"/admin/conversations/policy/{policy.pk}/change/",
                policy_form(policy, is_default="on"),
            )
            statuses[policy.name] = response.status_code
        finally:
            connections.close_all()

    params = {**connection.get_connection_params(), "autocommit": False}
    with psycopg.connect(**params) as holder:
        # Both saves come to the point where they move the default, and wait there.
        holder.execute("SELECT 1 FROM conversations_policy WHERE id = %s FOR UPDATE", [old.pk])
        threads = [threading.Thread(target=move_default_to, args=(p,)) for p in (first, second)]
        threads[0].start()
        wait_for_lock_waiters(1)
        threads[1].start()
        wait_for_lock_waiters(2)
        holder.rollback()
        for thread in threads:
            thread.join(timeout=30)

    assert statuses == {"strict": 302, "generous": 302}
    assert list(Policy.objects.filter(is_default=True)) == [second]
    # Each move is audited as it happened: standard gave it to strict, strict to generous.
    gave_up = AuditEntry.objects.filter(target_type="policy", before__is_default=True)
    assert sorted(e.target_id for e in gave_up) == sorted([str(old.pk), str(first.pk)])


def test_a_save_that_leaves_default_unticked_cannot_take_it_from_a_policy_that_just_got_it(
    staff: User,
) -> None:
    """Bob moves the default to "strict" while Alice saves "strict" from a page loaded
    before (default unticked there): her save is refused with the form's error instead of
    unticking it again, which would leave no default at all."""
    Policy.objects.all().delete()
    Policy.objects.create(name="standard", is_default=True)
    strict = Policy.objects.create(name="strict", tokens_per_day=1000)
    responses: dict[str, Any] = {}

    def save(who: str, **changes: Any) -> None:
        client = Client(raise_request_exception=False)
        client.force_login(staff)
        try:
            responses[who] = client.post(
                f"/admin/conversations/policy/{strict.pk}/change/", policy_form(strict, **changes)
            )
        finally:
            connections.close_all()

    params = {**connection.get_connection_params(), "autocommit": False}
    with psycopg.connect(**params) as holder:
        # Bob's save of the row waits here, after his move has begun.
        holder.execute("SELECT 1 FROM conversations_policy WHERE id = %s FOR UPDATE", [strict.pk])
        bob = threading.Thread(target=save, args=("bob",), kwargs={"is_default": "on"})
        bob.start()
        wait_for_lock_waiters(1)
        alice = threading.Thread(target=save, args=("alice",), kwargs={"tokens_per_day": 500})
        alice.start()
        wait_for_lock_waiters(2)
        holder.rollback()
        for thread in (bob, alice):
            thread.join(timeout=30)

    assert responses["bob"].status_code == 302
    assert responses["alice"].status_code == 200  # the form again, with the error
    assert "has become the default since this page was opened" in (
        responses["alice"].content.decode()
    )
    assert list(Policy.objects.filter(is_default=True)) == [strict]
    assert Policy.objects.get(pk=strict.pk).tokens_per_day == 1000


def test_a_policy_that_becomes_the_default_while_another_admin_deletes_it_stays(
    staff: User,
) -> None:
    """Bob moves the default to "strict" while Alice deletes "strict" from a page that showed
    it as not the default: her delete is refused (as deleting the default is), and there is
    still a default policy (with none, users outside every group would have no limits)."""
    Policy.objects.all().delete()
    Policy.objects.create(name="standard", is_default=True)
    strict = Policy.objects.create(name="strict", tokens_per_day=1000)
    statuses: dict[str, int] = {}

    def act(who: str, page: str, form: dict[str, Any]) -> None:
        client = Client(raise_request_exception=False)
        client.force_login(staff)
        try:
            statuses[who] = client.post(page, form).status_code
        finally:
            connections.close_all()

    change = f"/admin/conversations/policy/{strict.pk}/change/"
    delete = f"/admin/conversations/policy/{strict.pk}/delete/"
    params = {**connection.get_connection_params(), "autocommit": False}
    with psycopg.connect(**params) as holder:
        holder.execute("SELECT 1 FROM conversations_policy WHERE id = %s FOR UPDATE", [strict.pk])
        bob = threading.Thread(
            target=act, args=("bob", change, policy_form(strict, is_default="on"))
        )
        bob.start()
        wait_for_lock_waiters(1)
        alice = threading.Thread(target=act, args=("alice", delete, {"post": "yes"}))
        alice.start()
        wait_for_lock_waiters(2)
        holder.rollback()
        for thread in (bob, alice):
            thread.join(timeout=30)

    assert statuses == {"bob": 302, "alice": 403}
    assert list(Policy.objects.filter(is_default=True)) == [strict]
