"""The page that confirms a policy's delete says whose limits change with it: the users it is
assigned to, and each group that carries it with its members. Before, it named only
"Policy-group relationship: Policy_groups object (1)": an admin deleting a team's policy was
not told that every member's limits would fall back to other policies or the default."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from conversations import quota
from conversations.models import Policy, User, UserLimits
from tests.support import client_for, make_user

pytestmark = pytest.mark.django_db


def confirmation(staff: User, policy: Policy) -> str:
    response = client_for(staff).get(f"/admin/conversations/policy/{policy.pk}/delete/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_users_and_groups_it_applies_to_are_named(
    staff: User, alice: User, bob: User, charlie: User
) -> None:
    team = Policy.objects.create(name="Team", tokens_per_day=500_000)
    eng, empty = Group.objects.create(name="eng"), Group.objects.create(name="empty")
    team.groups.set([eng, empty])
    bob.groups.set([eng])
    charlie.groups.set([eng])
    UserLimits.objects.create(user=alice, policy=team)
    page = confirmation(staff, team)
    assert (
        "It is the own policy of 1 user (alice): their limits become those of their groups&#x27; "
        "policies, or of the default policy." in page
    )
    assert "Group “eng” carries it (2 members: bob, charlie): unless their own policy" in page
    assert "Group “empty” carries it (0 members): unless" in page

    # What it says happens, happens.
    response = client_for(staff).post(
        f"/admin/conversations/policy/{team.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert quota.limits_for(alice).source == "policy Default (default)"
    assert quota.limits_for(bob).source == "policy Default (default)"


def test_many_members_are_counted_and_names_are_text(staff: User) -> None:
    team = Policy.objects.create(name="Team")
    group = Group.objects.create(name="<b>all</b>")
    team.groups.set([group])
    for n in range(12):
        make_user(f"user{n:02}").groups.set([group])
    page = confirmation(staff, team)
    assert (
        "Group “&lt;b&gt;all&lt;/b&gt;” carries it (12 members: user00, user01, user02, user03, "
        "user04, user05, user06, user07, user08, user09 and 2 more)" in page
    )


def test_deleting_several_names_each_ones_users(staff: User, alice: User, bob: User) -> None:
    one, two = Policy.objects.create(name="one"), Policy.objects.create(name="two")
    UserLimits.objects.create(user=alice, policy=one)
    UserLimits.objects.create(user=bob, policy=two)
    response = client_for(staff).post(
        "/admin/conversations/policy/",
        {"action": "delete_selected", "_selected_action": [str(one.pk), str(two.pk)]},
    )
    page = response.content.decode()
    assert "It is the own policy of 1 user (alice)" in page
    assert "It is the own policy of 1 user (bob)" in page
