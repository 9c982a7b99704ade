"""A user whose own limit is unlimited sees no limit on it: on their usage page, in the
allowance the composer shows, and in what blocks the composer, though the policy that applies
to them has one (before, only a number could be set on a user)."""

from __future__ import annotations

import json
import re

import pytest

from conversations.models import Conversation, Policy, User, UserLimits
from tests.support import client_for, usage_account

pytestmark = pytest.mark.django_db


def page_data(html: str) -> dict[str, object]:
    match = re.search(r'<script id="page-data" type="application/json">(.*?)</script>', html, re.S)
    assert match
    result: dict[str, object] = json.loads(match.group(1))
    return result


@pytest.fixture
def policy(db: None) -> Policy:
    Policy.objects.all().delete()
    return Policy.objects.create(
        name="Default",
        is_default=True,
        tokens_per_day=1000,
        tokens_per_month=20_000,
        max_output_tokens=512,
        requests_per_minute=30,
        concurrent_streams=4,
    )


def test_a_lifted_daily_limit_is_no_daily_limit_and_the_month_still_counts(
    policy: Policy, alice: User, alice_conversation: Conversation
) -> None:
    UserLimits.objects.create(
        user=alice,
        tokens_per_day_unlimited=True,
        max_output_tokens_unlimited=True,
        concurrent_streams_unlimited=True,
    )
    usage_account(alice, day_used=5000, month_used=5000)  # five times the policy's day
    client = client_for(alice)

    page = client.get("/usage/").content.decode()
    assert "5,000 tokens · no daily limit" in page
    assert "5,000 tokens of 20,000 · 15,000 left" in page
    assert (
        "no output cap but each model's own · 30 requests per minute" in page
        and "replies at once" not in page
    )
    assert "tokens per day (unlimited)" in page  # where the limits come from

    summary = client.get("/usage/summary.json").json()
    assert (summary["today"]["limit"], summary["today"]["left"]) == (None, None)
    assert (summary["remaining"], summary["exhausted"], summary["warning"]) == (15_000, None, "")
    assert summary["max_output_tokens"] is None and summary["concurrent_streams"] is None

    data = page_data(client.get(f"/c/{alice_conversation.id}/").content.decode())
    assert data["blocked"] == ""  # the policy's day is long spent; hers is not limited


def test_with_day_and_month_lifted_nothing_is_left_to_count(
    policy: Policy, alice: User, alice_conversation: Conversation
) -> None:
    UserLimits.objects.create(
        user=alice, tokens_per_day_unlimited=True, tokens_per_month_unlimited=True
    )
    usage_account(alice, day_used=50_000, month_used=50_000)
    client = client_for(alice)
    summary = client.get("/usage/summary.json").json()
    assert (summary["remaining"], summary["month"]["limit"], summary["warning"]) == (None, None, "")
    page = client.get("/usage/").content.decode()
    assert "no daily limit" in page and "no monthly limit" in page
