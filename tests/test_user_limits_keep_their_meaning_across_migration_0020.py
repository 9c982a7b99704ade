"""Migration 0020 (a user's own limit may be unlimited) changes no stored limit's meaning:
a blank override still inherits the policy's value and a number is still that number, as
``usage_limits`` (what admission enforces) resolves them, before and after; rolled back, the
previous function is back and the flags are gone (an unlimited override inherits again: the
previous schema cannot say it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = ("conversations", "0019_link_requests")
UNLIMITED = ("conversations", "0020_a_users_own_limit_can_be_unlimited")
FIELDS = (
    "tokens_per_day",
    "tokens_per_month",
    "max_output_tokens",
    "requests_per_minute",
    "concurrent_streams",
)


def migrate_to(target: tuple[str, str]) -> Any:
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    executor.loader.build_graph()
    return executor.loader.project_state([target]).apps


def enforced(user_id: int) -> tuple[Any, ...]:
    """The user's limits as the installed ``usage_limits`` resolves them for admission."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tokens_per_day, tokens_per_month, max_output_tokens, requests_per_minute,"
            " concurrent_streams FROM usage_limits(%s, NULL)",
            [user_id],
        )
        return tuple(cursor.fetchone())


@pytest.fixture
def latest_after() -> Iterator[None]:
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("conversations")
    yield
    MigrationExecutor(connection).migrate(latest)


@pytest.mark.django_db(transaction=True)
def test_blank_still_inherits_and_numbers_stay_numbers(latest_after: None) -> None:
    old = migrate_to(BEFORE)
    policy = old.get_model("conversations", "Policy")
    limits = old.get_model("conversations", "UserLimits")
    user = old.get_model("conversations", "User")
    policy.objects.all().delete()
    policy.objects.create(name="Default", is_default=True, **dict.fromkeys(FIELDS, 10))
    blank = user.objects.create(username="blank")
    limits.objects.create(user=blank)
    numbers = user.objects.create(username="numbers")
    limits.objects.create(user=numbers, **{name: 100 + i for i, name in enumerate(FIELDS)})
    mixed = user.objects.create(username="mixed")
    limits.objects.create(user=mixed, tokens_per_day=0, requests_per_minute=7)
    none = user.objects.create(username="none")  # no row of its own
    users = [blank, numbers, mixed, none]
    before = {u.pk: enforced(u.pk) for u in users}
    assert before[blank.pk] == (10, 10, 10, 10, 10)
    assert before[numbers.pk] == (100, 101, 102, 103, 104)
    assert before[mixed.pk] == (0, 10, 10, 7, 10)

    new = migrate_to(UNLIMITED)
    assert {u.pk: enforced(u.pk) for u in users} == before
    rows = new.get_model("conversations", "UserLimits").objects
    assert not rows.filter(tokens_per_day_unlimited=True).exists()
    rows.filter(user_id=mixed.pk).update(tokens_per_day=None, tokens_per_day_unlimited=True)
    assert enforced(mixed.pk) == (None, 10, 10, 7, 10)

    migrate_to(BEFORE)  # the previous function again, reading no dropped column
    assert enforced(numbers.pk) == before[numbers.pk]
    assert enforced(mixed.pk) == (10, 10, 10, 7, 10)
