"""The usage dashboard's users tables say a suspended user has nothing left now: they showed
the tokens their limits still allowed ("1,000", "unlimited"), as if they could spend them."""

from __future__ import annotations

import re

import pytest

from conversations.models import User, UserLimits
from tests.support import client_for

pytestmark = pytest.mark.django_db


def remaining_now(html: str, username: str) -> str:
    row = re.search(rf"<tr><td>{username}</td>(.*?)</tr>", html, re.S)
    assert row, username
    cells = re.findall(r"<td>(.*?)</td>", row.group(1), re.S)
    return cells[5].strip()  # Calls, Tokens, Cost, Today, This month, Remaining now, ...


def test_a_suspended_user_has_none_left_now(staff: User, alice: User, bob: User) -> None:
    UserLimits.objects.create(user=alice, tokens_per_day=1000, suspended=True)
    UserLimits.objects.create(user=bob, tokens_per_day=1000)
    html = client_for(staff).get("/admin/usage/").content.decode()
    assert remaining_now(html, "alice") == "none: suspended"
    assert remaining_now(html, "bob") == "1,000"
