"""Where a user's limits come from names the fields the user's own Limits override: the
dashboard's "Limits from" and the user's page said only the policy, so a daily limit of 200
set on the user read as if the default policy (1M a day) had set it."""

from __future__ import annotations

import re

import pytest

from conversations import quota
from conversations.models import User, UserLimits
from tests.support import client_for

pytestmark = pytest.mark.django_db


def test_overridden_fields_are_named_beside_the_policy(staff: User, alice: User) -> None:
    UserLimits.objects.create(user=alice, tokens_per_day=200, concurrent_streams=1)

    source = quota.limits_for(alice).source
    assert source == (
        "policy Default (default); set for this account: tokens per day, concurrent streams"
    )
    assert quota.usage_summaries([alice])[alice.pk]["source"] == source

    dashboard = client_for(staff).get(f"/admin/usage/?user={alice.pk}").content.decode()
    row = re.search(r"<tr><td>alice</td>.*?</tr>", dashboard, re.S)
    assert row and "set for this account: tokens per day, concurrent streams" in row.group(0)
    assert (
        "set for this account: tokens per day" in client_for(alice).get("/usage/").content.decode()
    )


def test_a_user_without_overrides_gets_the_policy_alone(alice: User) -> None:
    UserLimits.objects.create(user=alice, suspended=True)
    assert quota.limits_for(alice).source == "policy Default (default)"


def test_a_field_the_user_has_no_limit_on_is_named_unlimited(alice: User) -> None:
    UserLimits.objects.create(user=alice, tokens_per_day_unlimited=True, concurrent_streams=1)
    assert quota.limits_for(alice).source == (
        "policy Default (default); set for this account: tokens per day (unlimited), concurrent streams"
    )
