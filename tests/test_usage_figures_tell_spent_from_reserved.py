"""The running totals count what a running reply holds in reserve (its worst case) with what
was spent: alice had spent 2,553 of her 6,000 tokens of the day and an API stream of hers was
admitted for up to 2,600 more; while it ran /usage/ said "You have used 86.3% of today's 6,000
tokens", and the dashboard's "Today" column said 5,179 beside a period of 2,553. The figures
and the warning now tell spent from reserved."""

from __future__ import annotations

import math
import re

import pytest
from django.db import transaction

from conversations import quota
from conversations.models import ModelConfig, Policy, User, UserLimits
from tests.support import client_for

pytestmark = pytest.mark.django_db

LIMIT = 6000
SPENT = 2553
MAX_TOKENS = 2600


def spend(user: User, model: ModelConfig, prompt: int, completion: int) -> None:
    with transaction.atomic():
        record = quota.admit(
            user, model, purpose="chat", prompt_tokens=prompt, max_tokens=completion
        )
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    quota.settle(record.pk, outcome="complete", usage=usage)


def start_a_stream(user: User, model: ModelConfig, prompt: int) -> int:
    """A call admitted and not settled, as an API stream is while it runs: what it reserved."""
    with transaction.atomic():
        quota.admit(user, model, purpose="api", prompt_tokens=prompt, max_tokens=MAX_TOKENS)
    return math.ceil(prompt * quota.PROMPT_PADDING) + quota.PROMPT_SLACK + MAX_TOKENS


@pytest.fixture
def alice_mid_stream(alice: User, chat_model: ModelConfig) -> int:
    """Alice's day: 2,553 spent and a stream running. What the stream holds in reserve."""
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_day=LIMIT)
    spend(alice, chat_model, prompt=2000, completion=SPENT - 2000)
    return start_a_stream(alice, chat_model, prompt=10)


def test_the_usage_page_tells_spent_from_reserved(alice: User, alice_mid_stream: int) -> None:
    reserved = alice_mid_stream
    held = SPENT + reserved
    page = client_for(alice).get("/usage/").content.decode()
    today = re.search(r"<dt>Today</dt><dd>(.*?) · resets", page, re.S)
    assert today
    assert today.group(1) == (
        f"{held:,} tokens of {LIMIT:,}: {SPENT:,} spent, {reserved:,} reserved by 1 running "
        f"reply · {LIMIT - held:,} left"
    )
    # Over 80% with the reservation, not without: the warning says what it is driven by.
    warning = re.search(r'<p class="usage-warning" role="status">(.*?)</p>', page, re.S)
    assert warning
    assert warning.group(1) == (
        f"{held / LIMIT:.1%} of today&#x27;s {LIMIT:,} tokens is used or reserved: "
        f"{SPENT:,} spent, {reserved:,} reserved by 1 running reply."
    )


def test_the_composers_warning_says_the_reservation_too(alice: User, alice_mid_stream: int) -> None:
    summary = client_for(alice).get("/usage/summary.json").json()
    today = summary["today"]
    assert (today["spent"], today["reserved"], today["running"]) == (SPENT, alice_mid_stream, 1)
    assert today["used"] == SPENT + alice_mid_stream
    assert summary["remaining"] == LIMIT - SPENT - alice_mid_stream
    assert "reserved by 1 running reply" in summary["warning"]


def test_a_day_spent_or_reserved_to_its_end_says_which(
    alice: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_day=LIMIT)
    spend(alice, chat_model, prompt=2000, completion=SPENT - 2000)
    reserved = start_a_stream(alice, chat_model, prompt=10)
    UserLimits.objects.filter(user=alice).update(tokens_per_day=SPENT + reserved)
    warning = client_for(alice).get("/usage/summary.json").json()["warning"]
    assert warning == (
        f"All of today's {SPENT + reserved:,} tokens are used or reserved: {SPENT:,} spent, "
        f"{reserved:,} reserved by 1 running reply."
    )


def test_a_warning_without_a_reservation_reads_as_before(
    alice: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_day=LIMIT)
    spend(alice, chat_model, prompt=4000, completion=1000)
    page = client_for(alice).get("/usage/").content.decode()
    assert "5,000 tokens of 6,000 · 1,000 left" in page
    assert "You have used 83.3% of today&#x27;s 6,000 tokens." in page


def test_the_dashboards_users_table_shows_spent_and_reserved_apart(
    staff: User, alice: User, alice_mid_stream: int
) -> None:
    html = client_for(staff).get("/admin/usage/").content.decode()
    row = re.search(r"<tr><td>alice</td>(.*?)</tr>", html, re.S)
    assert row
    cells = re.findall(r"<td>(.*?)</td>", row.group(1), re.S)
    assert cells[1] == f"{SPENT:,}"  # tokens of the period: settled calls
    assert cells[3] == f"{SPENT:,} spent + {alice_mid_stream:,} reserved / {LIMIT:,}"
    assert cells[4] == f"{SPENT:,} spent + {alice_mid_stream:,} reserved"
