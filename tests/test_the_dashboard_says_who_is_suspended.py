"""The usage dashboard's users tables say a suspended user, or one whose policy allows no enabled
model, has nothing left now: they showed the tokens their limits still allowed ("1,000",
"unlimited"), as if they could spend them."""

from __future__ import annotations

import re

import pytest

from conversations.models import ModelConfig, Policy, User, UserLimits
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


def test_a_user_left_with_no_model_has_none_left_now(
    staff: User, alice: User, bob: User, chat_model: ModelConfig
) -> None:
    policy = Policy.objects.create(name="Chat only", all_models=False, tokens_per_day=1000)
    policy.allowed_models.add(chat_model)
    UserLimits.objects.create(user=alice, policy=policy)
    UserLimits.objects.create(user=bob, tokens_per_day=1000)
    admin = client_for(staff)
    assert remaining_now(admin.get("/admin/usage/").content.decode(), "alice") == "1,000"
    ModelConfig.objects.filter(pk=chat_model.pk).update(enabled=False)
    html = admin.get("/admin/usage/").content.decode()
    assert remaining_now(html, "alice") == "none: no model allowed is enabled"
    assert remaining_now(html, "bob") == "1,000"  # every model: others are enabled
