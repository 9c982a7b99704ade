"""The page that confirms a group's delete (one group, or a batch) says whose limits change with
it, as a policy's delete does: the policies each group carries, the members whose effective
policy moves, and from what to what. Members whose own policy is assigned, or whose other
groups carry the same policies, are not named: their limits stay. Before, the page listed
"User-group relationship" rows and nothing of anyone's limits."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from conversations import quota
from conversations.models import Policy, User, UserLimits
from tests.support import client_for, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def teams(alice: User, bob: User, charlie: User) -> dict[str, Group]:
    """ "eng" carries "Team", "ops" carries "Ops", "eng-too" carries "Team" as well, "readers"
    carries none. Alice is only in eng; Bob in eng and ops; Charlie in eng with his own policy
    "Own"; Dana in eng and eng-too."""
    groups = {
        name: Group.objects.create(name=name) for name in ("eng", "ops", "eng-too", "readers")
    }
    team = Policy.objects.create(name="Team", tokens_per_day=500_000)
    team.groups.set([groups["eng"], groups["eng-too"]])
    Policy.objects.create(name="Ops").groups.set([groups["ops"]])
    alice.groups.set([groups["eng"], groups["readers"]])
    bob.groups.set([groups["eng"], groups["ops"]])
    charlie.groups.set([groups["eng"]])
    UserLimits.objects.create(user=charlie, policy=Policy.objects.create(name="Own"))
    make_user("dana").groups.set([groups["eng"], groups["eng-too"]])
    return groups


def confirmation(staff: User, group: Group) -> str:
    response = client_for(staff).get(f"/admin/auth/group/{group.pk}/delete/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_members_whose_policy_changes_are_named_with_before_and_after(
    staff: User, alice: User, bob: User, charlie: User, teams: dict[str, Group]
) -> None:
    page = confirmation(staff, teams["eng"])
    assert (
        "Group “eng” (4 members) carries policy “Team”: deleting it, the effective policy of 2 "
        "of its members changes (alice, bob). The others keep theirs (their own policy, or the "
        "same through their other groups)." in page
    )
    assert "alice: from their groups&#x27; policy “Team” to the default policy “Default”." in page
    assert (
        "bob: from their groups&#x27; policies “Ops”, “Team” to their groups&#x27; policy "
        "“Ops”." in page
    )
    assert "charlie:" not in page and "dana:" not in page

    # What it says happens, happens.
    before = {user.username: quota.limits_for(user).source for user in User.objects.all()}
    response = client_for(staff).post(
        f"/admin/auth/group/{teams['eng'].pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    after = {user.username: quota.limits_for(user).source for user in User.objects.all()}
    assert after["alice"] == "policy Default (default)"
    assert after["bob"] == "group policies: Ops"  # policies, not groups, by name
    assert {name for name in before if before[name] != after[name]} == {"alice", "bob"}


def test_a_group_carrying_no_policy_says_no_limits_change(
    staff: User, teams: dict[str, Group]
) -> None:
    page = confirmation(staff, teams["readers"])
    assert "Group “readers” (1 member) carries no policy: no member&#x27;s limits change." in page


def test_a_group_whose_members_keep_their_policy_says_so(
    staff: User, teams: dict[str, Group]
) -> None:
    page = confirmation(staff, teams["eng-too"])
    assert (
        "Group “eng-too” (1 member) carries policy “Team”: deleting it, no member&#x27;s "
        "effective policy changes." in page
    )


def test_a_batch_names_each_groups_members_with_the_others_gone_too(
    staff: User, teams: dict[str, Group]
) -> None:
    response = client_for(staff).post(
        "/admin/auth/group/",
        {
            "action": "delete_selected",
            "_selected_action": [str(teams["eng"].pk), str(teams["ops"].pk)],
        },
    )
    page = response.content.decode()
    assert "Group “eng” (4 members) carries policy “Team”" in page
    assert (
        "Group “ops” (1 member) carries policy “Ops”: deleting it, the effective policy of 1"
        in page
    )
    # Bob loses both groups' policies at once.
    assert (
        "bob: from their groups&#x27; policies “Ops”, “Team” to the default policy “Default”."
        in page
    )


def test_many_members_are_counted_and_names_are_text(staff: User) -> None:
    group = Group.objects.create(name="<b>all</b>")
    Policy.objects.create(name="<i>Big</i>").groups.set([group])
    for n in range(12):
        make_user(f"user{n:02}").groups.set([group])
    page = confirmation(staff, group)
    assert (
        "Group “&lt;b&gt;all&lt;/b&gt;” (12 members) carries policy “&lt;i&gt;Big&lt;/i&gt;”: "
        "deleting it, the effective policy of 12 of its members changes (user00, user01, user02, "
        "user03, user04, user05, user06, user07, user08, user09 and 2 more)." in page
    )
    assert "… and 2 more members whose policy changes." in page
