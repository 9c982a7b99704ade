"""The audit log records an account created in the admin, the first limits a user is given,
and a password an admin sets, each by whom: a new account with its flags and that its
password was set (never the password nor its hash), first limits as created ("create", not a
"change" from nothing), a password set or password sign-in disabled. None of the three was
recorded as such: creations and passwords not at all, first limits as a change."""

from __future__ import annotations

import json

import pytest

from conversations.models import AuditEntry, User, UserLimits
from tests.support import PASSWORD, admin_form, client_for

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new passphrase 42"


def entries_of(user: User) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(target_type="user", target_id=str(user.pk)))


def tells_nothing_of_the_password(entry: AuditEntry, user: User) -> None:
    stored = json.dumps([entry.before, entry.after, entry.target_repr])
    user.refresh_from_db()
    assert user.password not in stored
    assert PASSWORD not in stored and NEW_PASSWORD not in stored
    assert "pbkdf2" not in stored and "argon2" not in stored


def test_an_account_created_in_the_admin_is_audited(staff: User) -> None:
    client = client_for(staff)
    form = admin_form(
        client,
        "/admin/conversations/user/add/",
        username="dora",
        password1=NEW_PASSWORD,
        password2=NEW_PASSWORD,
    )
    response = client.post("/admin/conversations/user/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]

    dora = User.objects.get(username="dora")
    (entry,) = entries_of(dora)
    assert (entry.action, entry.actor, entry.actor_name) == ("create", staff, "sam")
    assert entry.before is None
    assert entry.after == {
        "username": "dora",
        "is_active": True,
        "is_staff": False,
        "is_superuser": False,
        "groups": [],
        "user_permissions": [],
        "group_policies": [],
        "password": "set",
    }
    tells_nothing_of_the_password(entry, dora)


def test_an_account_created_without_password_sign_in_says_so(staff: User) -> None:
    client = client_for(staff)
    form = admin_form(
        client, "/admin/conversations/user/add/", username="dora", usable_password="false"
    )
    assert client.post("/admin/conversations/user/add/", form).status_code == 302
    (entry,) = entries_of(User.objects.get(username="dora"))
    assert entry.action == "create" and entry.after["password"] == "disabled"


def test_a_password_an_admin_sets_is_audited(staff: User, alice: User) -> None:
    client = client_for(staff)
    page = f"/admin/conversations/user/{alice.pk}/password/"

    mismatched = client.post(
        page, {"usable_password": "true", "password1": NEW_PASSWORD, "password2": "other"}
    )
    assert mismatched.status_code == 200  # the form again: nothing set, nothing recorded
    assert entries_of(alice) == []

    response = client.post(
        page, {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    (entry,) = entries_of(alice)
    assert (entry.action, entry.actor, entry.actor_name) == ("password", staff, "sam")
    assert (entry.before, entry.after) == (None, {"password": "set"})
    tells_nothing_of_the_password(entry, alice)

    # Set again to the same words: set all the same (a new hash), so recorded again.
    client.post(
        page, {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert len(entries_of(alice)) == 2

    disabled = client.post(page, {"usable_password": "false", "unset-password": "1"})
    assert disabled.status_code == 302
    alice.refresh_from_db()
    assert not alice.has_usable_password()
    latest = AuditEntry.objects.filter(target_type="user").order_by("-pk").first()
    assert latest is not None
    assert (latest.action, latest.after) == ("password", {"password": "disabled"})


def test_a_conflicting_password_form_records_nothing(staff: User, alice: User) -> None:
    """ "Disable" chosen without its button (JavaScript off): Django changes nothing, and
    redirects back to the form."""
    page = f"/admin/conversations/user/{alice.pk}/password/"
    response = client_for(staff).post(page, {"usable_password": "false"})
    assert response.status_code == 302 and response["Location"].endswith("/password/")
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)
    assert entries_of(alice) == []


def limits_form(client: object, user: User, **fields: str) -> dict[str, str]:
    page = f"/admin/conversations/user/{user.pk}/change/"
    form = admin_form(client, page)  # type: ignore[arg-type]
    assert form["limits-TOTAL_FORMS"] == "0"  # no row yet: the page's "Add" makes the form
    form.update(
        {
            "limits-TOTAL_FORMS": "1",
            "limits-0-user": str(user.pk),
            **{f"limits-0-{name}": value for name, value in fields.items()},
        }
    )
    return form


def test_limits_given_for_the_first_time_are_created(staff: User, bob: User) -> None:
    client = client_for(staff)
    page = f"/admin/conversations/user/{bob.pk}/change/"
    form = limits_form(client, bob, tokens_per_day_choice="number", tokens_per_day="1000")
    assert client.post(page, form).status_code == 302

    row = UserLimits.objects.get(user=bob)
    (entry,) = AuditEntry.objects.filter(target_type="userlimits")
    assert (entry.action, entry.actor, entry.target_id) == ("create", staff, str(row.pk))
    assert entry.before is None and entry.after["tokens_per_day"] == 1000
    assert entries_of(bob) == []  # the account itself did not change


def test_a_first_suspension_is_recorded_as_a_suspension(staff: User, bob: User) -> None:
    """A suspension is found by its action, also when it is the user's first limits."""
    client = client_for(staff)
    page = f"/admin/conversations/user/{bob.pk}/change/"
    assert client.post(page, limits_form(client, bob, suspended="on")).status_code == 302
    (entry,) = AuditEntry.objects.filter(target_type="userlimits")
    assert entry.action == "suspend" and entry.before is None
    assert entry.after["suspended"] is True


def test_an_account_renamed_in_the_admin_is_audited(staff: User, alice: User) -> None:
    """The name an account signs in with is part of what the log keeps of it: a rename was
    not recorded (only its flags and grants were)."""
    client = client_for(staff)
    page = f"/admin/conversations/user/{alice.pk}/change/"
    assert client.post(page, admin_form(client, page, username="alice2")).status_code == 302
    (entry,) = entries_of(alice)
    assert (entry.action, entry.actor) == ("change", staff)
    assert (entry.before["username"], entry.after["username"]) == ("alice", "alice2")
    assert "email" not in entry.after


def test_a_group_joined_in_the_admin_records_the_policies_it_brings(
    staff: User, alice: User
) -> None:
    """Joining a group may change which policy sets the user's limits: the account's entry
    names the policies its groups carry, before and after, as the entry's page shows them."""
    from django.contrib.auth.models import Group

    from conversations import audit
    from conversations.models import Policy

    engineers = Group.objects.create(name="engineers")
    Policy.objects.create(name="engineering", tokens_per_day=10**9).groups.add(engineers)
    client = client_for(staff)
    page = f"/admin/conversations/user/{alice.pk}/change/"
    form = admin_form(client, page, groups=[str(engineers.pk)])
    assert client.post(page, form).status_code == 302
    (entry,) = entries_of(alice)
    assert (entry.before["group_policies"], entry.after["group_policies"]) == ([], ["engineering"])
    assert ("group_policies", "none", "engineering") in audit.readable_changes(entry)
    assert ("groups", "none", "engineers") in audit.readable_changes(entry)
