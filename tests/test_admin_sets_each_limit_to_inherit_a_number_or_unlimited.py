"""On a user's admin page, each of the user's own limits is chosen as "Inherit from the
policy", "Limit to" a number, or "Unlimited"; what is saved is what admission enforces, and
the audit log says each before and after as "inherited", "unlimited" or the number.

Before, an override could only be a number (blank inherited): an admin could not lift one
limit for one user without giving them a policy of their own."""

from __future__ import annotations

from html import escape
from typing import Any

import pytest

from conversations import quota
from conversations.models import UNLIMITED, AuditEntry, Policy, User, UserLimits
from tests.support import admin_form, client_for

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


def chosen(**fields: tuple[str, str]) -> dict[str, str]:
    """The inline form's values for ``fields``: each (choice, number as typed)."""
    form = {}
    for name, (choice, number) in fields.items():
        form[f"limits-0-{name}_choice"] = choice
        form[f"limits-0-{name}"] = number
    return form


def limit_errors(response: Any) -> dict[str, list[str]]:
    """The errors of the Limits form, by field, as the page shows them beside each field."""
    (formset,) = [f.formset for f in response.context["inline_admin_formsets"]]
    return {name: list(errors) for name, errors in formset.forms[0].errors.items()}


def test_each_choice_is_saved_enforced_and_audited(staff: User, alice: User) -> None:
    Policy.objects.filter(is_default=True).update(
        tokens_per_day=1000, tokens_per_month=20_000, max_output_tokens=512
    )
    UserLimits.objects.create(
        user=alice, tokens_per_day=500, requests_per_minute=5, concurrent_streams_unlimited=True
    )
    client = client_for(staff)
    form = admin_form(
        client,
        page(alice),
        **chosen(
            tokens_per_day=("unlimited", ""),
            tokens_per_month=("number", "7000"),
            max_output_tokens=("unlimited", ""),
            requests_per_minute=("inherit", ""),
            concurrent_streams=("number", "3"),
        ),
    )
    response = client.post(page(alice), form)
    assert response.status_code == 302, limit_errors(response)

    row = UserLimits.objects.get(user=alice)
    assert {name: row.override(name) for name in FIELDS} == {
        "tokens_per_day": UNLIMITED,
        "tokens_per_month": 7000,
        "max_output_tokens": UNLIMITED,
        "requests_per_minute": None,
        "concurrent_streams": 3,
    }
    default = Policy.objects.get(is_default=True)
    limits = quota.limits_for(alice)
    assert (
        limits.tokens_per_day,
        limits.tokens_per_month,
        limits.max_output_tokens,
        limits.requests_per_minute,
        limits.concurrent_streams,
    ) == (None, 7000, None, default.requests_per_minute, 3)

    (entry,) = AuditEntry.objects.filter(target_type="userlimits")
    assert (entry.action, entry.actor, entry.target_id) == ("change", staff, str(row.pk))
    assert {name: entry.before[name] for name in FIELDS} == {
        "tokens_per_day": 500,
        "tokens_per_month": "inherited",
        "max_output_tokens": "inherited",
        "requests_per_minute": 5,
        "concurrent_streams": "unlimited",
    }
    assert {name: entry.after[name] for name in FIELDS} == {
        "tokens_per_day": "unlimited",
        "tokens_per_month": 7000,
        "max_output_tokens": "unlimited",
        "requests_per_minute": "inherited",
        "concurrent_streams": 3,
    }
    assert not [key for key in entry.after if key.endswith("_unlimited")]  # one value per limit

    # The page shows what was saved; posted again unchanged, nothing changes and no entry.
    again = admin_form(client, page(alice))
    assert {name: again[f"limits-0-{name}_choice"] for name in FIELDS} == {
        "tokens_per_day": "unlimited",
        "tokens_per_month": "number",
        "max_output_tokens": "unlimited",
        "requests_per_minute": "inherit",
        "concurrent_streams": "number",
    }
    assert (again["limits-0-tokens_per_day"], again["limits-0-tokens_per_month"]) == ("", "7000")
    assert client.post(page(alice), again).status_code == 302
    assert AuditEntry.objects.filter(target_type="userlimits").count() == 1
    assert UserLimits.objects.get(user=alice).override("tokens_per_day") == UNLIMITED


def test_limits_added_to_a_user_without_any_can_be_unlimited(staff: User, bob: User) -> None:
    client = client_for(staff)
    form = admin_form(client, page(bob))
    assert form["limits-TOTAL_FORMS"] == "0"  # no row yet: the page's "Add" makes the form
    form.update(
        {
            "limits-TOTAL_FORMS": "1",
            "limits-0-user": str(bob.pk),
            **chosen(tokens_per_day=("unlimited", ""), tokens_per_month=("inherit", "")),
        }
    )
    response = client.post(page(bob), form)
    assert response.status_code == 302, limit_errors(response)
    row = UserLimits.objects.get(user=bob)
    assert (row.override("tokens_per_day"), row.override("tokens_per_month")) == (UNLIMITED, None)
    entry = AuditEntry.objects.get(target_type="userlimits")
    assert entry.before is None
    assert (entry.after["tokens_per_day"], entry.after["tokens_per_month"]) == (
        "unlimited",
        "inherited",
    )


@pytest.mark.parametrize(
    ("choice", "number", "error"),
    [
        ("number", "", "Enter the limit, or choose “Inherit from the policy” or “Unlimited”."),
        (
            "inherit",
            "500",
            "“Inherit from the policy” is chosen, and a number entered: choose “Limit to” to "
            "limit to 500, or clear the number.",
        ),
        (
            "unlimited",
            "500",
            "“Unlimited” is chosen, and a number entered: choose “Limit to” to limit to 500, "
            "or clear the number.",
        ),
        ("number", "-1", "Ensure this value is greater than or equal to 0."),
        ("number", "lots", "Enter a whole number."),
        (
            "sometimes",
            "",
            "Select a valid choice. sometimes is not one of the available choices.",
        ),
    ],
)
def test_an_unclear_limit_is_refused_on_its_field(
    staff: User, alice: User, choice: str, number: str, error: str
) -> None:
    UserLimits.objects.create(user=alice, tokens_per_day=500)
    client = client_for(staff)
    form = admin_form(client, page(alice), **chosen(tokens_per_month=(choice, number)))
    response = client.post(page(alice), form)
    assert response.status_code == 200
    assert limit_errors(response) == {"tokens_per_month": [error]}
    # Shown on the page beside the field, with what was entered kept.
    html = response.content.decode()
    at = html.index("fieldBox field-tokens_per_month errors")
    shown = html[html.rindex('<ul class="errorlist', 0, at) : at]
    assert escape(error) in shown
    box = html[at : html.index("</div>", at)]
    assert f'<option value="{choice}" selected>' in box or choice == "sometimes"
    if number:
        assert f'name="limits-0-tokens_per_month" value="{number}"' in box
    row = UserLimits.objects.get(user=alice)
    assert (row.override("tokens_per_day"), row.override("tokens_per_month")) == (500, None)
    assert not AuditEntry.objects.filter(target_type="userlimits").exists()


def test_a_post_without_the_choice_means_what_its_number_says(staff: User, alice: User) -> None:
    """A script written when the number was the only input still sets (or clears) it."""
    UserLimits.objects.create(user=alice, tokens_per_month_unlimited=True)
    client = client_for(staff)
    form = admin_form(client, page(alice), **{"limits-0-tokens_per_day": "100"})
    for name in FIELDS:
        del form[f"limits-0-{name}_choice"]
    del form["limits-0-tokens_per_month"]  # left out: blank, inherit
    assert client.post(page(alice), form).status_code == 302
    row = UserLimits.objects.get(user=alice)
    assert (row.override("tokens_per_day"), row.override("tokens_per_month")) == (100, None)
