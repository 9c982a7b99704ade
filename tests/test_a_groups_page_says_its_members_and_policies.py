"""A group decides which policies apply to its members (README, "Limits and usage"), but its
admin page was Django's stock one: a name and a list of the admin's permissions, nothing of who
is in it nor of the policies it carries, nor where either is chosen (members on each user's
page, a policy's groups on the policy's). Its page now says both, read-only, with the way to
change them."""

from __future__ import annotations

import html

import pytest
from django.contrib.auth.models import Group

from conversations.models import Policy, User
from tests.support import client_for, make_user

pytestmark = pytest.mark.django_db


def page(staff: User, path: str) -> str:
    response = client_for(staff).get(path)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_a_groups_page_names_its_members_and_the_policies_it_carries(
    staff: User, alice: User, bob: User
) -> None:
    interns = Group.objects.create(name="interns")
    alice.groups.add(interns)
    bob.groups.add(interns)
    strict = Policy.objects.create(name="Interns", tokens_per_day=20_000)
    strict.groups.add(interns)

    text = page(staff, f"/admin/auth/group/{interns.pk}/change/")
    assert "alice, bob" in text
    assert f"/admin/conversations/user/?groups__id__exact={interns.pk}" in text
    assert f'<a href="/admin/conversations/policy/{strict.pk}/change/">Interns</a>' in text
    assert "Users → the user → Groups" in text
    assert "Policies → the policy → Groups" in text


def test_a_new_or_unused_group_says_where_members_and_policies_are_chosen(staff: User) -> None:
    text = page(staff, "/admin/auth/group/add/")
    assert "None yet. Add people on each user's page (Users → the user → Groups)." in text
    assert "None: it changes no one's limits." in text

    empty = Group.objects.create(name="readers")
    text = page(staff, f"/admin/auth/group/{empty.pk}/change/")
    assert "None yet." in text and "None: it changes no one's limits." in text


def test_a_long_member_list_is_cut_with_a_link_to_all(staff: User) -> None:
    big = Group.objects.create(name="everyone")
    for n in range(25):
        make_user(f"user{n:02}").groups.add(big)
    text = page(staff, f"/admin/auth/group/{big.pk}/change/")
    assert "user19" in text and "user20" not in text
    assert "and 5 more" in text
