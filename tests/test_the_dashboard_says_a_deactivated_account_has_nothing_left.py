"""The usage dashboard's users tables say a deactivated account has nothing left now, as they
say it of a suspended one: admission refuses it, and the table showed the tokens its limits
still allowed ("1,000"), as if it could spend them."""

from __future__ import annotations

import pytest

from conversations.models import User, UserLimits
from tests.support import client_for
from tests.test_the_dashboard_says_who_is_suspended import remaining_now

pytestmark = pytest.mark.django_db


def test_a_deactivated_user_has_none_left_now(staff: User, alice: User, bob: User) -> None:
    UserLimits.objects.create(user=alice, tokens_per_day=1000)
    UserLimits.objects.create(user=bob, tokens_per_day=1000)
    User.objects.filter(pk=alice.pk).update(is_active=False)
    admin = client_for(staff)
    html = admin.get(f"/admin/usage/?user={alice.pk}").content.decode()
    assert remaining_now(html, "alice") == "none: deactivated"
    html = admin.get(f"/admin/usage/?user={bob.pk}").content.decode()
    assert remaining_now(html, "bob") == "1,000"
