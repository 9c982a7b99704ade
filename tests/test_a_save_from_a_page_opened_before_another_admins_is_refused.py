"""Two admins on the same admin page (a policy, a model with its dated prices, an account with
its Limits section), each opened before either saved. Django's admin wrote back every field as
the second page had read it: the first admin's change was undone without a word, and both were
told "changed successfully". The second save is refused, naming who changed what and when (as
the audit log has it), with what the second admin entered still on the page; nothing of it is
saved. A page opened after the first save saves as ever, and so does one when the first save
changed nothing. The page carries no field's value as read (a password hash least of all):
only the count of the row's saves and when it was opened."""

from __future__ import annotations

import re
import threading
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from django.contrib.auth.models import Group
from django.db import connection, connections
from django.test import Client

from conversations.models import ModelConfig, ModelPrice, Policy, User, UserLimits
from tests.support import admin_form, client_for, make_user
from tests.test_two_admins_move_the_default_policy_at_once import wait_for_lock_waiters

pytestmark = pytest.mark.django_db


def page_of(row: Any) -> str:
    return f"/admin/{row._meta.app_label}/{row._meta.model_name}/{row.pk}/change/"


def refusal(response: Any) -> str:
    """The refusal the page shows above the form, as text."""
    assert response.status_code == 200, response.status_code
    errors = response.context["adminform"].form.non_field_errors()
    assert len(errors) == 1, errors
    return re.sub(r"<[^>]+>", "", str(errors[0]))


@pytest.fixture
def root(db: None) -> User:
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def ann(db: None) -> User:
    return make_user("ann", is_staff=True, is_superuser=True)


def test_a_policy_saved_from_an_older_page_is_refused_naming_who_changed_what(
    root: User, ann: User
) -> None:
    team = Policy.objects.create(name="Team", tokens_per_day=100_000, requests_per_minute=5)
    first, second = client_for(root), client_for(ann)
    page = page_of(team)
    roots_page = admin_form(first, page, tokens_per_day="4000")
    anns_page = admin_form(second, page, requests_per_minute="6")  # opened before root saves
    assert "password" not in anns_page and "initial-tokens_per_day" not in anns_page

    assert first.post(page, roots_page).status_code == 302

    response = second.post(page, anns_page)
    said = refusal(response)
    assert said.startswith("This policy was changed after this page was opened: root at "), said
    assert "(tokens per day). Nothing was saved, so that those changes are not undone." in said
    assert "open this policy as it is now" in said
    team.refresh_from_db()
    assert (team.tokens_per_day, team.requests_per_minute) == (4000, 5)
    # What ann entered is still there, and saving it again is refused again.
    assert 'name="requests_per_minute" value="6"' in response.content.decode()
    assert second.post(page, anns_page).status_code == 200

    # From the page as it is now, her change is saved, and root's stays.
    assert second.post(page, admin_form(second, page, requests_per_minute="6")).status_code == 302
    team.refresh_from_db()
    assert (team.tokens_per_day, team.requests_per_minute) == (4000, 6)


def test_a_save_that_changed_nothing_refuses_no_one(root: User, ann: User) -> None:
    team = Policy.objects.create(name="Team", tokens_per_day=100_000)
    first, second = client_for(root), client_for(ann)
    page = page_of(team)
    roots_page = admin_form(first, page)
    anns_page = admin_form(second, page, tokens_per_day="5000")

    assert first.post(page, roots_page).status_code == 302  # "Save", nothing changed
    assert second.post(page, anns_page).status_code == 302
    assert Policy.objects.get(pk=team.pk).tokens_per_day == 5000


def test_a_sign_in_of_the_account_meanwhile_is_no_change_of_its_page(
    root: User, ann: User, alice: User
) -> None:
    """The account signs in between the pages' opening and the saves: its last sign-in is not
    a field of the page (read-only), so root's unchanged save changes nothing and ann's saves."""
    first, second = client_for(root), client_for(ann)
    page = page_of(alice)
    roots_page = admin_form(first, page)
    anns_page = admin_form(second, page, first_name="Alicia")
    assert "last_login_0" not in roots_page
    client_for(alice)  # signs in: last_login moves
    assert first.post(page, roots_page).status_code == 302
    assert second.post(page, anns_page).status_code == 302
    stored = User.objects.get(pk=alice.pk)
    assert stored.first_name == "Alicia" and stored.last_login is not None


def test_the_default_moved_away_meanwhile_is_not_taken_back_by_an_older_page(
    root: User, ann: User
) -> None:
    Policy.objects.all().delete()
    standard = Policy.objects.create(name="standard", is_default=True)
    strict = Policy.objects.create(name="strict", tokens_per_day=1000)
    first, second = client_for(root), client_for(ann)
    anns_page = admin_form(second, page_of(standard), tokens_per_day="9000")  # ticked default

    moved = first.post(page_of(strict), admin_form(first, page_of(strict), is_default="on"))
    assert moved.status_code == 302

    said = refusal(second.post(page_of(standard), anns_page))
    assert "root at " in said and "(is default)" in said, said
    assert list(Policy.objects.filter(is_default=True)) == [strict]
    assert Policy.objects.get(pk=standard.pk).tokens_per_day is None


def test_a_models_dated_price_changed_meanwhile_refuses_the_models_older_page(
    root: User, ann: User, chat_model: ModelConfig
) -> None:
    price = ModelPrice.objects.create(
        model=chat_model,
        effective_from=date(2026, 1, 1),
        input_cache_hit=Decimal("0.07"),
        input_cache_miss=Decimal("0.27"),
        output=Decimal("1.10"),
    )
    first, second = client_for(root), client_for(ann)
    page = page_of(chat_model)
    roots_page = admin_form(first, page, **{"prices-0-output": "2.20"})
    anns_page = admin_form(second, page, display_name="Chat (renamed)")

    assert first.post(page, roots_page).status_code == 302

    said = refusal(second.post(page, anns_page))
    assert "This model was changed after this page was opened: root at " in said
    assert "(model price: output)" in said, said
    assert ModelConfig.objects.get(pk=chat_model.pk).display_name != "Chat (renamed)"
    assert ModelPrice.objects.get(pk=price.pk).output == Decimal("2.20")


def test_an_accounts_limits_changed_meanwhile_refuse_its_older_page(root: User, ann: User) -> None:
    carol = make_user("carol")
    UserLimits.objects.create(user=carol, tokens_per_day=5000)
    first, second = client_for(root), client_for(ann)
    page = page_of(carol)
    roots_page = admin_form(first, page, **{"limits-0-suspended": "on"})
    anns_page = admin_form(
        second,
        page,
        email="carol@example.com",
        **{"limits-0-tokens_per_day_choice": "number", "limits-0-tokens_per_day": "6000"},
    )
    html = second.get(page).content.decode()
    assert carol.password not in html and "pbkdf2_sha256$" not in html

    assert first.post(page, roots_page).status_code == 302

    response = second.post(page, anns_page)
    said = refusal(response)
    assert "This user was changed after this page was opened: root at " in said
    assert "(limits: suspended)" in said, said
    assert 'value="carol@example.com"' in response.content.decode()
    carol.refresh_from_db()
    limits = UserLimits.objects.get(user=carol)
    assert (carol.email, limits.suspended, limits.tokens_per_day) == ("", True, 5000)

    # And the other way round: the account's own fields changed, its limits saved from before.
    roots_page = admin_form(first, page, is_active=None)  # unticked: deactivated
    anns_page = admin_form(second, page, **{"limits-0-suspended": None})
    assert first.post(page, roots_page).status_code == 302
    said = refusal(second.post(page, anns_page))
    assert "root at " in said and "(is active)" in said, said
    assert UserLimits.objects.get(user=carol).suspended


def test_an_account_changed_without_an_audit_entry_still_refuses_the_older_page(
    root: User, ann: User
) -> None:
    """The audit log keeps no e-mail: the refusal names no one, but still refuses."""
    carol = make_user("carol")
    first, second = client_for(root), client_for(ann)
    page = page_of(carol)
    roots_page = admin_form(first, page, email="carol@example.com")
    anns_page = admin_form(second, page, first_name="Carol")

    assert first.post(page, roots_page).status_code == 302

    said = refusal(second.post(page, anns_page))
    assert said.startswith("This user was changed after this page was opened. Nothing was saved"), (
        said
    )
    carol.refresh_from_db()
    assert (carol.email, carol.first_name) == ("carol@example.com", "")


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
def test_two_saves_from_pages_opened_alike_at_the_same_moment_one_is_refused(
    staff: User,
) -> None:
    """Checked under the row's lock, counted before the commit: the second waits for the
    first, then finds the count moved on (not read-then-write)."""
    team = Policy.objects.create(name="Team", tokens_per_day=100_000, requests_per_minute=5)
    page = page_of(team)
    pages = {
        "bob": admin_form(client_for(staff), page, tokens_per_day="4000"),
        "alice": admin_form(client_for(staff), page, requests_per_minute="6"),
    }
    responses: dict[str, Any] = {}

    def save(who: str) -> None:
        client = Client(raise_request_exception=False)
        client.force_login(staff)
        try:
            responses[who] = client.post(page, pages[who])
        finally:
            connections.close_all()

    params = {**connection.get_connection_params(), "autocommit": False}
    with psycopg.connect(**params) as holder:
        holder.execute("SELECT 1 FROM conversations_policy WHERE id = %s FOR UPDATE", [team.pk])
        bob = threading.Thread(target=save, args=("bob",))
        bob.start()
        wait_for_lock_waiters(1)
        alice = threading.Thread(target=save, args=("alice",))
        alice.start()
        wait_for_lock_waiters(2)
        holder.rollback()
        for thread in (bob, alice):
            thread.join(timeout=30)

    statuses = sorted(response.status_code for response in responses.values())
    assert statuses == [200, 302], statuses
    team.refresh_from_db()
    assert (team.tokens_per_day, team.requests_per_minute) in ((4000, 5), (100_000, 6))


def test_a_group_deleted_meanwhile_refuses_its_members_older_page_naming_it(
    root: User, ann: User
) -> None:
    """Its page posts the deleted group: refused on "Select a valid choice. 7 is not one of
    the available choices." alone, unsaid why; now the refusal says who deleted it, when."""
    interns = Group.objects.create(name="interns")
    carol = make_user("carol")
    carol.groups.add(interns)
    first, second = client_for(root), client_for(ann)
    anns_page = admin_form(second, page_of(carol), email="carol@example.com")

    assert first.post(f"/admin/auth/group/{interns.pk}/delete/", {"post": "yes"}).status_code == 302

    said = refusal(second.post(page_of(carol), anns_page))
    assert "This user was changed after this page was opened: root at " in said
    assert "(groups)" in said, said


def test_a_users_own_policy_deleted_meanwhile_refuses_the_users_older_page_naming_it(
    root: User, ann: User
) -> None:
    strict = Policy.objects.create(name="strict", tokens_per_day=1000)
    carol = make_user("carol")
    UserLimits.objects.create(user=carol, policy=strict)
    first, second = client_for(root), client_for(ann)
    anns_page = admin_form(second, page_of(carol), email="carol@example.com")

    assert (
        first.post(f"{page_of(strict)[: -len('change/')]}delete/", {"post": "yes"}).status_code
        == 302
    )

    said = refusal(second.post(page_of(carol), anns_page))
    assert "root at " in said and "(limits: policy)" in said, said
