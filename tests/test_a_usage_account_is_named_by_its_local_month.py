"""An account's running totals are named by the month they count, as the deployment counts it:
deleting a user in a Pacific/Auckland deployment listed "Usage of dave since 2026-10-31", the
UTC date of the local midnight that began 1 November."""

from __future__ import annotations

from datetime import UTC

import pytest
from django.utils import timezone

from conversations.models import User
from tests.support import client_for, make_user, usage_account

pytestmark = pytest.mark.django_db


def test_deleting_a_user_names_their_usage_by_the_local_month(
    settings: object, staff: User
) -> None:
    settings.TIME_ZONE = "Pacific/Auckland"  # type: ignore[attr-defined]  # UTC+12 or +13
    dave = make_user("dave")
    account = usage_account(dave, day_used=10, month_used=10)
    local_month = timezone.localdate().replace(day=1)
    assert account.month_start.astimezone(UTC).date() != local_month

    page = client_for(staff).get(f"/admin/conversations/user/{dave.pk}/delete/")
    assert f"Usage of dave since {local_month:%Y-%m-%d}" in page.content.decode()
