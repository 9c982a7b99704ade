"""The admin's list of users can show only the suspended users, or only the others (users
without limits of their own included: they are not suspended), and sort by it. The column
said who was suspended, but finding them all meant reading every page."""

from __future__ import annotations

import pytest
from django.contrib import admin

from conversations.models import User, UserLimits
from tests.support import client_for

pytestmark = pytest.mark.django_db

USERS = "/admin/conversations/user/"


def listed(staff: User, **query: str) -> list[str]:
    response = client_for(staff).get(USERS, query)
    assert response.status_code == 200
    return [user.username for user in response.context["cl"].result_list]


def test_the_users_list_filters_and_sorts_by_suspension(
    staff: User, alice: User, bob: User, charlie: User
) -> None:
    UserLimits.objects.create(user=alice, suspended=True)
    UserLimits.objects.create(user=bob, suspended=False, tokens_per_day=1000)
    # charlie has no limits of his own; nor has sam (staff).

    page = client_for(staff).get(USERS).content.decode()
    assert "By suspended" in page
    assert 'href="?suspended=yes"' in page and 'href="?suspended=no"' in page

    assert listed(staff, suspended="yes") == ["alice"]
    assert sorted(listed(staff, suspended="no")) == ["bob", "charlie", "sam"]
    assert sorted(listed(staff)) == ["alice", "bob", "charlie", "sam"]
    # The "suspended" column sorts: descending, the suspended first.
    column = admin.site.get_model_admin(User).list_display.index("suspended") + 1
    assert listed(staff, o=f"-{column}")[0] == "alice"
    assert listed(staff, o=str(column))[-1] == "alice"
