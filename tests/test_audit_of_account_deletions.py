"""Deleting an account in the admin (its page, or "delete selected" on the list) is in the
audit log, and so are the limits deleted with it (a suspension, a policy, overrides): who
deleted them and what they were."""

from __future__ import annotations

import pytest

from conversations.models import AuditEntry, Policy, User, UserLimits
from tests.support import client_for

pytestmark = pytest.mark.django_db


def test_deleting_a_suspended_user_records_the_account_and_its_limits(
    staff: User, alice: User
) -> None:
    vip = Policy.objects.create(name="vip", tokens_per_day=10**9)
    limits = UserLimits.objects.create(user=alice, suspended=True, policy=vip, tokens_per_month=5)
    response = client_for(staff).post(
        f"/admin/conversations/user/{alice.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert not User.objects.filter(pk=alice.pk).exists()

    account = AuditEntry.objects.get(target_type="user")
    assert (account.action, account.actor, account.target_id) == ("delete", staff, str(alice.pk))
    assert account.after is None and account.before["is_active"] is True
    assert "password" not in account.before  # the account's flags and grants only
    removed = AuditEntry.objects.get(target_type="userlimits")
    assert (removed.action, removed.actor, removed.target_id) == ("delete", staff, str(limits.pk))
    assert removed.before["suspended"] is True and removed.before["policy"] == vip.pk
    assert removed.before["tokens_per_month"] == 5 and removed.after is None


def test_deleting_users_from_the_list_audits_each(staff: User, alice: User, bob: User) -> None:
    UserLimits.objects.create(user=bob, tokens_per_day=10)
    response = client_for(staff).post(
        "/admin/conversations/user/",
        {
            "action": "delete_selected",
            "_selected_action": [str(alice.pk), str(bob.pk)],
            "post": "yes",
        },
    )
    assert response.status_code == 302
    assert not User.objects.filter(pk__in=[alice.pk, bob.pk]).exists()
    accounts = AuditEntry.objects.filter(action="delete", target_type="user")
    assert sorted(e.target_id for e in accounts) == sorted([str(alice.pk), str(bob.pk)])
    assert AuditEntry.objects.get(target_type="userlimits").before["tokens_per_day"] == 10
