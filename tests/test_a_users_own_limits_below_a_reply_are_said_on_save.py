"""A user's own limits whose day (or month) cannot hold one chat reply are saved, but the admin
is told, as for a policy: no reply can be sent in the chat with them. Before, only a policy's
save said so; a per-user limit of 700 tokens a day was saved silently, and the user read "700
left today" beside each refusal."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from conversations.models import Policy, User, UserLimits
from tests.support import admin_form, client_for
from tests.test_admin_sets_each_limit_to_inherit_a_number_or_unlimited import chosen, page

pytestmark = pytest.mark.django_db


def _warnings(response: object) -> list[str]:
    return [m.message for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]  # type: ignore[attr-defined]


def test_a_users_day_below_a_reply_is_said_and_saved(staff: User, alice: User) -> None:
    Policy.objects.filter(is_default=True).update(max_output_tokens=2000)
    UserLimits.objects.create(user=alice)  # own limits, each inherited so far
    client = client_for(staff)
    response = client.post(
        page(alice),
        admin_form(client, page(alice), **chosen(tokens_per_day=("number", "700"))),
    )
    assert response.status_code == 302
    assert UserLimits.objects.get(user=alice).tokens_per_day == 700  # saved all the same
    assert _warnings(response) == [
        "Tokens per day (700) is below what one chat reply reserves: its prompt and up to 2,000 "
        "output tokens (“Max output tokens”, or the models' default output). No reply can be "
        "sent in the chat with these limits; only API calls that ask for fewer output tokens. "
        "Raise the limit or lower “Max output tokens”."
    ]

    # Limits that hold a reply are saved without a word.
    response = client.post(
        page(alice),
        admin_form(client, page(alice), **chosen(tokens_per_day=("number", "50000"))),
    )
    assert response.status_code == 302
    assert _warnings(response) == []


def test_a_month_below_the_day_is_said_and_saved(staff: User, alice: User) -> None:
    """A month's limit below the day's reads as if a day could spend the day's number, which it
    never can: saved (a lower cap may be meant), but said."""
    UserLimits.objects.create(user=alice)
    client = client_for(staff)
    response = client.post(
        page(alice),
        admin_form(
            client,
            page(alice),
            **chosen(tokens_per_day=("number", "200000"), tokens_per_month=("number", "100000")),
        ),
    )
    assert response.status_code == 302
    own = UserLimits.objects.get(user=alice)
    assert (own.tokens_per_day, own.tokens_per_month) == (200000, 100000)
    assert _warnings(response) == [
        "Tokens per month (100,000) is below tokens per day (200,000): with these limits, a day "
        "can never use more than the month's 100,000. Raise the month's limit, or lower the "
        "day's to what you mean."
    ]
