"""Changing a password (one's own, or an admin setting an account's) writes only the password.
Django saved the whole row as read when the request began, a second of password hashing
before: an admin's deactivation (or a staff flag taken off) committed meanwhile was written
back over, and the account was active again while the audit log said it was deactivated."""

from __future__ import annotations

import pytest

from conversations.admin import SetAccountPasswordForm
from conversations.models import User
from conversations.signin import PasswordChangeThrottledForm
from tests.support import PASSWORD

pytestmark = pytest.mark.django_db

NEW = "a new long passphrase 42"


def _deactivated_meanwhile(user: User) -> None:
    User.objects.filter(pk=user.pk).update(is_active=False, is_staff=False)


def test_ones_own_change_keeps_a_deactivation_made_meanwhile(alice: User) -> None:
    User.objects.filter(pk=alice.pk).update(is_staff=True)
    alice.refresh_from_db()  # as the request read it
    form = PasswordChangeThrottledForm(
        alice,
        {"old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW},
    )
    assert form.is_valid(), form.errors
    _deactivated_meanwhile(alice)
    form.save()
    stored = User.objects.get(pk=alice.pk)
    assert stored.check_password(NEW)
    assert (stored.is_active, stored.is_staff) == (False, False)


def test_an_admins_set_password_keeps_a_deactivation_made_meanwhile(alice: User) -> None:
    alice.refresh_from_db()
    form = SetAccountPasswordForm(
        alice, {"password1": NEW, "password2": NEW, "usable_password": "true"}
    )
    assert form.is_valid(), form.errors
    _deactivated_meanwhile(alice)
    form.save()
    stored = User.objects.get(pk=alice.pk)
    assert stored.check_password(NEW)
    assert stored.is_active is False
