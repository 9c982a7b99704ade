"""A user's Limits section says what a blank field means there: the policy's value, not
unlimited (a policy's blank is unlimited, and the section looked the same, so an admin who
cleared a user's daily limit to lift it got the policy's limit back, with nothing saying so).
Each limit now names its choice: inherit from the policy, a number, or unlimited."""

from __future__ import annotations

import pytest

from conversations import quota
from conversations.models import Policy, User, UserLimits
from tests.support import client_for

pytestmark = pytest.mark.django_db


def test_the_limits_section_explains_blank_fields(staff: User, alice: User) -> None:
    UserLimits.objects.create(user=alice, tokens_per_day=None)
    default = Policy.objects.get(is_default=True)
    assert default.tokens_per_day is not None
    # What the page must say: blank takes the policy's value.
    assert quota.limits_for(alice).tokens_per_day == default.tokens_per_day

    page = client_for(staff).get(f"/admin/conversations/user/{alice.pk}/change/")
    html = page.content.decode()
    limits = html[html.index('id="limits-group"') :]
    assert "“Inherit from the policy” takes the policy's value" in limits
    assert "“Unlimited” lifts it for this user, whatever the policy says." in limits
    # The blank field says so itself.
    assert '<option value="inherit" selected>Inherit from the policy</option>' in limits
