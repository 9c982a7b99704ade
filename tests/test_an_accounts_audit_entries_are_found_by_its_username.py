"""An admin looks in the audit log for what was done to dave's account, searching "dave". Dave
has a full name (David Smith): his entries named him by it alone ("Limits of David Smith"), so
the search found nothing of his suspension. Each entry of an account, or of its limits, names
it by its username and its full name, and both find it."""

from __future__ import annotations

import pytest

from conversations.models import AuditEntry, User
from tests.support import admin_form, client_for, make_user

pytestmark = pytest.mark.django_db


def found(client: object, term: str) -> set[tuple[str, str]]:
    response = client.get("/admin/conversations/auditentry/", {"q": term})  # type: ignore[attr-defined]
    assert response.status_code == 200
    return {(entry.action, entry.target_type) for entry in response.context["cl"].result_list}


def test_an_accounts_entries_are_found_by_its_username_and_its_full_name(staff: User) -> None:
    dave = make_user("dave", first_name="David", last_name="Smith")
    client = client_for(staff)
    page = f"/admin/conversations/user/{dave.pk}/change/"
    form = admin_form(
        client,
        page,
        is_staff="on",
        **{"limits-TOTAL_FORMS": "1", "limits-0-suspended": "on"},
    )
    assert client.post(page, form).status_code == 302

    assert {(e.action, e.target_repr) for e in AuditEntry.objects.all()} == {
        ("change", "dave (David Smith)"),
        ("suspend", "Limits of dave (David Smith)"),
    }
    for term in ("dave", "David Smith"):
        assert found(client, term) == {("change", "user"), ("suspend", "userlimits")}, term


def test_an_account_without_a_full_name_is_named_by_its_username_alone(staff: User) -> None:
    carol = make_user("carol")
    client = client_for(staff)
    page = f"/admin/conversations/user/{carol.pk}/change/"
    assert client.post(page, admin_form(client, page, is_staff="on")).status_code == 302
    assert AuditEntry.objects.get().target_repr == "carol"
