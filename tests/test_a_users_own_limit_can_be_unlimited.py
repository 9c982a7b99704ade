"""A user's own limit can be unlimited, and then the policy's limit on that field no longer
applies to them; admission (the one SQL statement every call goes through) enforces exactly
what ``quota.limits_for`` says, for every field, whichever policy applies.

Before, an override could only be a number: an admin had to give such a user a policy of
their own to lift one limit. Blank still inherits the policy's value; a number still caps.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations import quota
from conversations.errors import ChatError
from conversations.models import (
    UNLIMITED,
    ModelConfig,
    Policy,
    UsageAccount,
    UsageRecord,
    User,
    UserLimits,
)

pytestmark = pytest.mark.django_db

# A minute fixed for the whole test: requests per minute are counted in one minute.
NOW = timezone.now().replace(second=1, microsecond=0)

# Each field: what the policy allows, a number set on the user (above the policy's), and a
# demand far beyond both.
POLICY = {
    "tokens_per_day": 100,
    "tokens_per_month": 100,
    "max_output_tokens": 64,
    "requests_per_minute": 2,
    "concurrent_streams": 2,
}
NUMBER = {
    "tokens_per_day": 300,
    "tokens_per_month": 300,
    "max_output_tokens": 200,
    "requests_per_minute": 4,
    "concurrent_streams": 4,
}
FAR_BEYOND = {
    "tokens_per_day": 10_000,
    "tokens_per_month": 10_000,
    "max_output_tokens": 5_000,
    "requests_per_minute": 12,
    "concurrent_streams": 12,
}


def account(name: str) -> User:
    return User.objects.create(username=name)  # no password: none signs in (hashing is slow)


def admit(user: User, model: ModelConfig, max_tokens: int, now: datetime = NOW) -> None:
    """One call through the real admission statement (``quota.ADMIT_SQL``), no prompt: it
    reserves ``max_tokens`` plus the fixed slack. Refused: raises the refusal."""
    params = quota.admission_params(
        user.pk, model.pk, purpose="chat", prompt_tokens=0, max_tokens=max_tokens, now=now
    )
    with transaction.atomic():
        quota.run_admission(params)


def admitted(field: str, user: User, model: ModelConfig, amount: int) -> bool:
    """Whether ``user``, having used nothing, is admitted for ``amount`` of ``field``: a call
    reserving that many tokens, asking that many output tokens, the ``amount``-th request of
    a minute or reply running at once."""
    UsageRecord.objects.filter(user=user).delete()
    UsageAccount.objects.filter(user=user).delete()
    try:
        if field in ("tokens_per_day", "tokens_per_month"):
            admit(user, model, max_tokens=amount - quota.PROMPT_SLACK)
        elif field == "max_output_tokens":
            admit(user, model, max_tokens=amount)
        else:  # each call holds its stream (none is settled), all in the one minute
            for _ in range(amount):
                admit(user, model, max_tokens=1)
    except ChatError:
        return False
    return True


def enforced(field: str, user: User, model: ModelConfig) -> int | None:
    """The limit on ``field`` that admission enforces on ``user``, as :class:`quota.Limits`
    says it: a number N (N is admitted, N + 1 is not), or None (far beyond is admitted).
    Only the numbers this test sets are tried."""
    if admitted(field, user, model, FAR_BEYOND[field]):
        return None
    for limit in (POLICY[field], NUMBER[field]):
        if admitted(field, user, model, limit) and not admitted(field, user, model, limit + 1):
            return limit
    raise AssertionError(f"{field}: admission enforces none of the limits this test sets")


def own_limits(user: User, field: str, value: int | str | None) -> UserLimits:
    limits = UserLimits(user=user)
    limits.set_override(field, value)
    limits.save()
    return limits


def only_default_policy(field: str) -> None:
    Policy.objects.all().delete()
    Policy.objects.create(name="Default", is_default=True, **{field: POLICY[field]})


def groups_policies(field: str, user: User) -> None:
    """Two group policies: the most generous of them (the policy's number) applies."""
    Policy.objects.all().delete()
    Policy.objects.create(name="Default", is_default=True, **{field: 1})
    for name, value in (("small", 1), ("bigger", POLICY[field])):
        group = Group.objects.create(name=name)
        Policy.objects.create(name=name, **{field: value}).groups.set([group])
        user.groups.add(group)


def own_policy(field: str, limits: UserLimits) -> None:
    """A policy of the user's own, which replaces the default and the groups'."""
    limits.policy = Policy.objects.create(name="own", **{field: POLICY[field]})
    limits.save()


FIELDS = list(POLICY)


@pytest.mark.parametrize("field", FIELDS)
def test_unlimited_beats_the_default_policys_limit(field: str, chat_model: ModelConfig) -> None:
    only_default_policy(field)
    alice = account("alice")
    own_limits(alice, field, UNLIMITED)
    assert getattr(quota.limits_for(alice), field) is None
    assert enforced(field, alice, chat_model) is None
    # Far beyond the policy's, at once: e.g. 10,000 tokens on a day the policy allows 100.
    assert admitted(field, alice, chat_model, FAR_BEYOND[field])

    bob = account("bob")  # the same policy, no override: limited
    assert not admitted(field, bob, chat_model, FAR_BEYOND[field])


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("source", ["default", "groups", "own policy"])
@pytest.mark.parametrize("override", ["inherit", "number", "unlimited"])
def test_admission_enforces_what_limits_for_says(
    field: str, source: str, override: str, chat_model: ModelConfig
) -> None:
    alice = account("alice")
    value: int | str | None = {"inherit": None, "number": NUMBER[field], "unlimited": UNLIMITED}[
        override
    ]
    limits = own_limits(alice, field, value)
    arrange: dict[str, Callable[[], None]] = {
        "default": lambda: only_default_policy(field),
        "groups": lambda: groups_policies(field, alice),
        "own policy": lambda: own_policy(field, limits),
    }
    Policy.objects.all().delete()
    arrange[source]()

    expected = {"inherit": POLICY[field], "number": NUMBER[field], "unlimited": None}[override]
    said = quota.limits_for(alice)
    assert getattr(said, field) == expected
    assert quota.limits_for_many([alice]) == {alice.pk: said}
    assert enforced(field, alice, chat_model) == expected


def test_a_user_may_be_unlimited_on_one_field_and_limited_on_the_others(
    chat_model: ModelConfig,
) -> None:
    Policy.objects.all().delete()
    Policy.objects.create(
        name="Default", is_default=True, tokens_per_day=100, tokens_per_month=5_000
    )
    alice = account("alice")
    own_limits(alice, "tokens_per_day", UNLIMITED)
    limits = quota.limits_for(alice)
    assert (limits.tokens_per_day, limits.tokens_per_month) == (None, 5_000)
    admit(alice, chat_model, max_tokens=4_000)  # forty times the policy's day
    with pytest.raises(ChatError) as refused:
        admit(alice, chat_model, max_tokens=1_000)
    assert refused.value.extra["period"] == "month"  # the month still holds


def test_a_number_and_unlimited_at_once_is_refused_by_the_database() -> None:
    alice = account("alice")
    for field in FIELDS:
        with pytest.raises(IntegrityError), transaction.atomic():
            UserLimits.objects.create(user=alice, **{field: 5, f"{field}_unlimited": True})
