"""A date and time typed in the admin, in the deployment's time zone, is stored in UTC: a
moment that falls outside years 1 to 9999 there (the last evening of 9999 west of UTC, the
first morning of year 1 east of it) is refused on the form. It failed the save as an internal
error, or, on an account, was stored and failed every later read of the account."""

from __future__ import annotations

import pytest
from django.utils import timezone

from conversations.models import Conversation, ShareLink, User
from tests.support import admin_form, client_for

pytestmark = pytest.mark.django_db

REFUSAL = "outside the years 1 to 9999 in UTC"


def test_the_last_evening_of_9999_west_of_utc_is_refused_on_a_share_link(
    staff: User, alice: User, alice_conversation: Conversation, settings: object
) -> None:
    settings.TIME_ZONE = "America/New_York"  # type: ignore[attr-defined]
    link = ShareLink.objects.create(
        conversation=alice_conversation, created_by=alice, hashed="a" * 64
    )
    client = client_for(staff)
    page = f"/admin/conversations/sharelink/{link.pk}/change/"
    form = admin_form(client, page, expires_at_0="9999-12-31", expires_at_1="23:00:00")
    response = client.post(page, form)
    assert response.status_code == 200  # the form again, with the error
    assert REFUSAL in response.content.decode()
    link.refresh_from_db()
    assert link.expires_at is None


def test_the_first_morning_of_year_1_east_of_utc_is_refused_on_an_account(
    staff: User, alice: User, settings: object
) -> None:
    settings.TIME_ZONE = "Asia/Tokyo"  # type: ignore[attr-defined]
    client = client_for(staff)
    page = f"/admin/conversations/user/{alice.pk}/change/"
    form = admin_form(client, page, date_joined_0="0001-01-01", date_joined_1="00:00:00")
    response = client.post(page, form)
    assert response.status_code == 200
    assert REFUSAL in response.content.decode()
    # The account still reads (a stored year-0 date failed every query that loaded it).
    assert User.objects.get(pk=alice.pk).date_joined.year == timezone.now().year


def test_the_first_morning_of_year_1_east_of_utc_is_refused_on_a_conversation(
    staff: User, alice_conversation: Conversation, settings: object
) -> None:
    settings.TIME_ZONE = "Asia/Tokyo"  # type: ignore[attr-defined]
    client = client_for(staff)
    page = f"/admin/conversations/conversation/{alice_conversation.pk}/change/"
    form = admin_form(client, page, deleted_at_0="0001-01-01", deleted_at_1="08:00:00")
    response = client.post(page, form)
    assert response.status_code == 200
    assert REFUSAL in response.content.decode()
    alice_conversation.refresh_from_db()
    assert alice_conversation.deleted_at is None


def test_a_moment_within_the_calendar_in_utc_is_saved(
    staff: User, alice: User, alice_conversation: Conversation, settings: object
) -> None:
    settings.TIME_ZONE = "Asia/Tokyo"  # type: ignore[attr-defined]
    link = ShareLink.objects.create(
        conversation=alice_conversation, created_by=alice, hashed="b" * 64
    )
    client = client_for(staff)
    page = f"/admin/conversations/sharelink/{link.pk}/change/"
    form = admin_form(client, page, expires_at_0="9999-12-31", expires_at_1="23:00:00")
    assert client.post(page, form).status_code == 302
    link.refresh_from_db()
    assert link.expires_at is not None and link.expires_at.year == 9999
