"""On a user's admin page, under each of the user's own limits, the page says what "Inherit from
the policy" gives and where it comes from: the user's own policy, the most generous of their
groups' policies (naming the policy and the groups that carry it), or the default policy. It
is what admission enforces for a limit left to inherit.

Before, the page offered "Inherit from the policy" without saying what that was: the admin had
to work out the user's groups, their policies and the most generous of each field by hand."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection

from conversations import quota
from conversations.errors import InvalidParameter
from conversations.models import ModelConfig, Policy, User, UserLimits
from tests.support import client_for

pytestmark = pytest.mark.django_db

FIELDS = (
    "tokens_per_day",
    "tokens_per_month",
    "max_output_tokens",
    "requests_per_minute",
    "concurrent_streams",
)


def page(user: User) -> str:
    return f"/admin/conversations/user/{user.pk}/change/"


def inherits_shown(staff: User, user: User, form: str = "0") -> dict[str, str]:
    """The text under each limit of the Limits form (``form``: ``__prefix__`` is the one
    "Add another" adds), as the page shows it."""
    html = client_for(staff).get(page(user)).content.decode()
    shown = {}
    for name in FIELDS:
        found = re.search(
            rf'id="id_limits-{form}-{name}_0_helptext">\s*<div>(.*?)</div>', html, re.S
        )
        assert found, name
        shown[name] = found.group(1)
    return shown


def as_number(text: str) -> int | None:
    """The value a text under a limit says: None for unlimited."""
    value = re.match(r"Inherits: ([\d,]+|unlimited) ", unescape(text))
    assert value, text
    return None if value.group(1) == "unlimited" else int(value.group(1).replace(",", ""))


def enforced(user: User, model: ModelConfig) -> dict[str, Any]:
    """The limits admission applies to ``user`` (its SQL, ``usage_limits``)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM usage_limits(%s, %s)", [user.pk, model.pk])
        names = [column.name for column in cursor.description]
        row = dict(zip(names, cursor.fetchone(), strict=True))
    return {name: row[name] for name in FIELDS}


@pytest.fixture
def groups(alice: User) -> dict[str, Group]:
    """Alice is in eng and interns; ops carries the same policy as eng, without her."""
    Policy.objects.filter(is_default=True).update(
        tokens_per_day=10, tokens_per_month=10, max_output_tokens=10
    )
    eng, ops, interns = (Group.objects.create(name=n) for n in ("eng", "ops", "interns"))
    Policy.objects.create(
        name="Team",
        tokens_per_day=200_000,
        tokens_per_month=None,
        max_output_tokens=512,
        requests_per_minute=5,
        concurrent_streams=2,
    ).groups.set([eng, ops])
    Policy.objects.create(
        name="Small",
        tokens_per_day=1000,
        tokens_per_month=5_000_000,
        max_output_tokens=4096,
        requests_per_minute=None,
        concurrent_streams=1,
    ).groups.set([interns])
    alice.groups.set([eng, interns])
    return {"eng": eng, "ops": ops, "interns": interns}


def test_group_policies_are_named_field_by_field_as_admission_enforces_them(
    staff: User, alice: User, chat_model: ModelConfig, groups: dict[str, Group]
) -> None:
    UserLimits.objects.create(user=alice)  # every limit inherited
    shown = inherits_shown(staff, alice)
    assert {name: unescape(text) for name, text in shown.items()} == {
        "tokens_per_day": "Inherits: 200,000 from policy “Team” via group “eng”",
        "tokens_per_month": "Inherits: unlimited from policy “Team” via group “eng”",
        "max_output_tokens": "Inherits: 4,096 from policy “Small” via group “interns”",
        "requests_per_minute": "Inherits: unlimited from policy “Small” via group “interns”",
        "concurrent_streams": "Inherits: 2 from policy “Team” via group “eng”",
    }
    assert {name: as_number(text) for name, text in shown.items()} == enforced(alice, chat_model)
    # Admission itself: the output cap shown is the one a call is held to.
    with pytest.raises(InvalidParameter, match="at most 4096"):
        quota.admit(alice, chat_model, purpose="chat", prompt_tokens=10, max_tokens=4097)
    quota.admit(alice, chat_model, purpose="chat", prompt_tokens=10, max_tokens=4096)

    # Reached through both of her groups now: both named.
    alice.groups.add(groups["ops"])
    shown = inherits_shown(staff, alice)
    assert unescape(shown["tokens_per_day"]) == (
        "Inherits: 200,000 from policy “Team” via groups “eng”, “ops”"
    )
    assert {name: as_number(text) for name, text in shown.items()} == enforced(alice, chat_model)


def test_an_overridden_limit_still_says_what_inherit_would_give(
    staff: User, alice: User, chat_model: ModelConfig, groups: dict[str, Group]
) -> None:
    own = UserLimits.objects.create(
        user=alice, tokens_per_day=50, concurrent_streams_unlimited=True
    )
    shown = inherits_shown(staff, alice)
    assert as_number(shown["tokens_per_day"]) == 200_000
    assert as_number(shown["concurrent_streams"]) == 2
    assert enforced(alice, chat_model)["tokens_per_day"] == 50
    own.set_override("tokens_per_day", None)
    own.set_override("concurrent_streams", None)
    own.save()
    assert enforced(alice, chat_model)["tokens_per_day"] == 200_000
    assert enforced(alice, chat_model)["concurrent_streams"] == 2


def test_the_users_own_policy_the_default_and_none(
    staff: User, alice: User, chat_model: ModelConfig, groups: dict[str, Group]
) -> None:
    own_policy = Policy.objects.create(name="Solo", tokens_per_day=7, tokens_per_month=None)
    own = UserLimits.objects.create(user=alice, policy=own_policy)
    shown = inherits_shown(staff, alice)
    assert unescape(shown["tokens_per_day"]) == "Inherits: 7 from policy “Solo”, the user's own"
    assert {name: as_number(text) for name, text in shown.items()} == enforced(alice, chat_model)

    own.policy = None
    own.save()
    alice.groups.clear()
    shown = inherits_shown(staff, alice)
    assert unescape(shown["tokens_per_day"]) == "Inherits: 10 from the default policy “Default”"
    assert {name: as_number(text) for name, text in shown.items()} == enforced(alice, chat_model)

    Policy.objects.all().delete()
    shown = inherits_shown(staff, alice)
    assert unescape(shown["tokens_per_day"]) == "Inherits: unlimited (no policy applies)"
    assert {name: as_number(text) for name, text in shown.items()} == enforced(alice, chat_model)


def test_a_user_without_limits_of_their_own_is_told_on_the_form_add_another_adds(
    staff: User, bob: User, groups: dict[str, Group]
) -> None:
    bob.groups.set([groups["ops"]])
    shown = inherits_shown(staff, bob, form="__prefix__")
    assert unescape(shown["tokens_per_day"]) == (
        "Inherits: 200,000 from policy “Team” via group “ops”"
    )


def test_names_are_shown_as_text(staff: User, alice: User) -> None:
    """A group's or a policy's name is text: the admin's help text is not escaped for us."""
    group = Group.objects.create(name="<img src=x onerror=alert(1)>")
    Policy.objects.create(name="<b>bold</b>", tokens_per_day=5).groups.set([group])
    alice.groups.set([group])
    UserLimits.objects.create(user=alice)
    shown = inherits_shown(staff, alice)["tokens_per_day"]
    assert "<img" not in shown and "<b>" not in shown
    assert unescape(shown) == (
        "Inherits: 5 from policy “<b>bold</b>” via group “<img src=x onerror=alert(1)>”"
    )
