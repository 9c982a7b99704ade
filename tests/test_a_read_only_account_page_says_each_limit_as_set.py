"""Staff who may only view an account (or only its limits) see its Limits read-only, each as it
is set: the user's own number, "Unlimited", or what it inherits and from which policy. Django
showed the stored column instead: "-" for an unlimited limit and for one left to the policy
alike, with nothing of what inheriting gives. Nor does a crafted post change a limit there."""

from __future__ import annotations

import html as entities
import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from conversations.models import UNLIMITED, AuditEntry, Policy, User, UserLimits
from tests.support import admin_form, client_for, make_user

pytestmark = pytest.mark.django_db


def staff_who_may(*codenames: str) -> Client:
    viewer = make_user("vera", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return client_for(viewer)


def limits_shown(html: str) -> dict[str, str]:
    """Each read-only field of the Limits section: its label → its text."""
    section = html[html.index('id="limits-group"') :]
    section = section[: section.index('class="submit-row"')]
    pairs = re.findall(
        r'<label[^>]*>([^<]+):</label>\s*<div class="readonly">(.*?)</div>', section, re.S
    )
    return {label: entities.unescape(re.sub(r"<[^>]+>", "", text)).strip() for label, text in pairs}


@pytest.fixture
def alices_limits(alice: User) -> UserLimits:
    Policy.objects.filter(is_default=True).update(is_default=False)
    Policy.objects.create(name="Standard", is_default=True, tokens_per_month=20_000_000)
    limits = UserLimits(user=alice)
    limits.set_override("tokens_per_day", 500)
    limits.set_override("max_output_tokens", UNLIMITED)
    limits.save()
    return limits


@pytest.mark.parametrize(
    "codenames",
    [
        ("view_user", "view_userlimits"),  # views both
        ("view_user", "change_userlimits"),  # may change limits, but not the account
        ("view_user", "change_user", "view_userlimits"),  # the account, but not its limits
    ],
)
def test_each_limit_reads_as_set_and_none_is_a_field(
    alice: User, alices_limits: UserLimits, codenames: tuple[str, ...]
) -> None:
    viewer = staff_who_may(*codenames)
    html = viewer.get(f"/admin/conversations/user/{alice.pk}/change/").content.decode()
    assert limits_shown(html) | {"Suspended": ""} == {
        "Suspended": "",
        "Policy": "-",
        "Tokens per day": "500 (this user's own)",
        "Tokens per month": "Inherits: 20,000,000 from the default policy “Standard”",
        "Max output tokens": "Unlimited (this user's own)",
        "Requests per minute": "Inherits: unlimited from the default policy “Standard”",
        "Concurrent streams": "Inherits: unlimited from the default policy “Standard”",
    }
    assert 'name="limits-0-tokens_per_day' not in html


def test_an_editable_page_keeps_its_choices(alice: User, alices_limits: UserLimits) -> None:
    editor = staff_who_may("view_user", "change_user", "view_userlimits", "change_userlimits")
    html = editor.get(f"/admin/conversations/user/{alice.pk}/change/").content.decode()
    assert 'name="limits-0-tokens_per_day_choice"' in html
    assert limits_shown(html).get("Tokens per day") is None


@pytest.mark.parametrize(
    ("codenames", "status"),
    [
        (("view_user", "change_userlimits"), 403),
        (("view_user", "change_user", "view_userlimits"), 302),
    ],
)
def test_a_crafted_post_changes_no_limit(
    alice: User, alices_limits: UserLimits, codenames: tuple[str, ...], status: int
) -> None:
    viewer = staff_who_may(*codenames)
    editor = client_for(make_user("root", is_staff=True, is_superuser=True))
    page = f"/admin/conversations/user/{alice.pk}/change/"
    form = admin_form(editor, page)  # the editable page's whole form, as a script would post
    form.update(
        {
            "limits-0-suspended": "on",
            "limits-0-tokens_per_day_choice": "number",
            "limits-0-tokens_per_day": "9",
            "limits-0-max_output_tokens_choice": "inherit",
        }
    )
    response = viewer.post(page, form)
    assert response.status_code == status
    stored = UserLimits.objects.get(user=alice)
    assert (stored.suspended, stored.override("tokens_per_day")) == (False, 500)
    assert stored.override("max_output_tokens") == UNLIMITED
    assert not AuditEntry.objects.filter(target_type__icontains="limits").exists()


@pytest.mark.parametrize(
    ("codenames", "superuser", "offered"),
    [
        (("view_user",), False, False),  # may only view accounts
        (("view_user", "change_user"), True, False),  # a superuser's: read-only to staff
        (("view_user", "change_user"), False, True),
    ],
)
def test_reset_password_is_offered_only_where_it_may_be_used(
    alice: User, codenames: tuple[str, ...], superuser: bool, offered: bool
) -> None:
    """The read-only page offered "Reset password", which led to a 403."""
    User.objects.filter(pk=alice.pk).update(is_superuser=superuser)
    viewer = staff_who_may(*codenames)
    html = viewer.get(f"/admin/conversations/user/{alice.pk}/change/").content.decode()
    assert "algorithm" in html  # the password's summary, either way
    assert ('href="../password/"' in html) is offered
    status = viewer.get(f"/admin/conversations/user/{alice.pk}/password/").status_code
    assert status == (200 if offered else 403)
