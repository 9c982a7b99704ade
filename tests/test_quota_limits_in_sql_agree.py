"""The limits admission resolves in SQL (``usage_limits``) are the ones ``quota.limits_for``
shows on the pages: groups, the default, a user's own policy, overrides, suspension."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection

from conversations import quota
from conversations.models import ModelConfig, Policy, User, UserLimits

pytestmark = pytest.mark.django_db

FIELDS = (
    "tokens_per_day",
    "tokens_per_month",
    "max_output_tokens",
    "requests_per_minute",
    "concurrent_streams",
)


def resolved_in_sql(user: User, model: ModelConfig) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM usage_limits(%s, %s)", [user.pk, model.pk])
        names = [column.name for column in cursor.description]
        return dict(zip(names, cursor.fetchone(), strict=True))


def assert_agree(user: User, models: list[ModelConfig]) -> quota.Limits:
    limits = quota.limits_for(user)
    assert quota.limits_for_many([user]) == {user.pk: limits}  # the dashboards' bulk read
    for model in models:
        model.refresh_from_db()
        sql = resolved_in_sql(user, model)
        assert {name: sql[name] for name in FIELDS} == {
            name: getattr(limits, name) for name in FIELDS
        }
        assert sql["suspended"] == limits.suspended
        assert sql["api_access"] == limits.api_access
        by_policy = limits.allowed_model_ids is None or model.pk in limits.allowed_model_ids
        assert sql["model_allowed"] == by_policy, model.name
        assert (sql["model_allowed"] and sql["model_enabled"]) == limits.allows(model)
    return limits


@pytest.fixture
def models(chat_model: ModelConfig, reasoner_model: ModelConfig) -> list[ModelConfig]:
    return [chat_model, reasoner_model]


def test_without_any_policy_nothing_is_limited(alice: User, models: list[ModelConfig]) -> None:
    Policy.objects.all().delete()
    limits = assert_agree(alice, models)
    assert limits.tokens_per_day is None and limits.allowed_model_ids is None


def test_the_default_policy_applies_to_a_user_without_groups(
    alice: User, models: list[ModelConfig], reasoner_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    default = Policy.objects.create(
        name="Default", is_default=True, tokens_per_day=1000, all_models=False, api_access=False
    )
    default.allowed_models.set([reasoner_model])
    assert assert_agree(alice, models).tokens_per_day == 1000
    # A group without a policy changes nothing.
    alice.groups.add(Group.objects.create(name="no policy"))
    assert assert_agree(alice, models).tokens_per_day == 1000


def test_the_most_generous_of_the_groups_applies_field_by_field(
    alice: User, models: list[ModelConfig], chat_model: ModelConfig, reasoner_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    Policy.objects.create(name="Default", is_default=True, tokens_per_day=10)
    interns, staff, ops = (Group.objects.create(name=n) for n in ("interns", "staff", "ops"))
    small = Policy.objects.create(
        name="small",
        tokens_per_day=1000,
        tokens_per_month=None,
        max_output_tokens=512,
        requests_per_minute=5,
        concurrent_streams=1,
        all_models=False,
        api_access=False,
    )
    small.allowed_models.set([chat_model])
    small.groups.set([interns])
    big = Policy.objects.create(
        name="big",
        tokens_per_day=50_000,
        tokens_per_month=100_000,
        max_output_tokens=None,
        requests_per_minute=3,
        concurrent_streams=None,
        all_models=False,
        api_access=True,
    )
    big.groups.set([staff, ops])  # reached through two groups: counted once
    alice.groups.set([interns, staff, ops])
    limits = assert_agree(alice, models)
    assert limits.allowed_model_ids == {chat_model.pk} and limits.api_access
    big.allowed_models.set([reasoner_model])
    limits = assert_agree(alice, models)
    assert limits.allowed_model_ids == {chat_model.pk, reasoner_model.pk}
    big.all_models = True
    big.save()
    assert assert_agree(alice, models).allowed_model_ids is None


def test_a_users_own_policy_replaces_the_groups_and_overrides_go_on_top(
    alice: User, models: list[ModelConfig], chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    team = Group.objects.create(name="team")
    Policy.objects.create(name="team", tokens_per_day=50_000).groups.set([team])
    alice.groups.set([team])
    own_policy = Policy.objects.create(
        name="own", tokens_per_day=100, max_output_tokens=64, all_models=False
    )
    own_policy.allowed_models.set([chat_model])
    own = UserLimits.objects.create(user=alice, policy=own_policy, tokens_per_month=7)
    limits = assert_agree(alice, models)
    assert (limits.tokens_per_day, limits.tokens_per_month) == (100, 7)
    own.policy = None
    own.requests_per_minute = 2
    own.save()
    limits = assert_agree(alice, models)
    assert (limits.tokens_per_day, limits.requests_per_minute) == (50_000, 2)


def test_a_users_own_unlimited_fields_are_unlimited_whatever_the_policy(
    alice: User, bob: User, models: list[ModelConfig]
) -> None:
    Policy.objects.all().delete()
    everything = {name: 10 for name in FIELDS}
    Policy.objects.create(name="Default", is_default=True, **everything)
    team = Group.objects.create(name="team")
    Policy.objects.create(name="team", **everything).groups.set([team])
    own = UserLimits.objects.create(
        user=alice,
        tokens_per_day_unlimited=True,
        max_output_tokens_unlimited=True,
        concurrent_streams_unlimited=True,
        requests_per_minute=99,
    )
    UserLimits.objects.create(user=bob, tokens_per_month_unlimited=True)
    expected = (None, 10, None, 99, None)
    # Under the default policy, a group's, and one of the user's own.
    for arrange in (
        lambda: None,
        lambda: alice.groups.set([team]),
        lambda: UserLimits.objects.filter(pk=own.pk).update(
            policy=Policy.objects.create(name="own", **everything)
        ),
    ):
        arrange()
        limits = assert_agree(alice, models)
        assert tuple(getattr(limits, name) for name in FIELDS) == expected
    assert assert_agree(bob, models).tokens_per_month is None
    assert assert_agree(bob, models).tokens_per_day == 10
    together = quota.limits_for_many([alice, bob])
    assert together == {alice.pk: quota.limits_for(alice), bob.pk: quota.limits_for(bob)}


def test_suspension_an_inactive_account_and_a_disabled_model(
    alice: User, models: list[ModelConfig], reasoner_model: ModelConfig
) -> None:
    UserLimits.objects.create(user=alice, suspended=True)
    assert assert_agree(alice, models).suspended
    reasoner_model.enabled = False
    reasoner_model.save()
    assert_agree(alice, models)
    assert not resolved_in_sql(alice, reasoner_model)["model_enabled"]
    alice.is_active = False
    alice.save()
    assert resolved_in_sql(alice, reasoner_model)["is_active"] is False


def test_read_together_each_user_gets_their_own_limits(
    alice: User, bob: User, charlie: User, chat_model: ModelConfig, reasoner_model: ModelConfig
) -> None:
    """The dashboards read many users' limits at once: each as :func:`quota.limits_for` says."""
    Policy.objects.all().delete()
    Policy.objects.create(name="Default", is_default=True, tokens_per_day=10)
    interns, staff = Group.objects.create(name="interns"), Group.objects.create(name="staff")
    small = Policy.objects.create(name="small", tokens_per_day=1000, all_models=False)
    small.allowed_models.set([chat_model])
    small.groups.set([interns])
    big = Policy.objects.create(name="big", tokens_per_day=50_000, all_models=False)
    big.allowed_models.set([reasoner_model])
    big.groups.set([staff])
    alice.groups.set([interns, staff])
    bob.groups.set([interns])
    own = Policy.objects.create(name="own", tokens_per_month=7)
    UserLimits.objects.create(user=charlie, policy=own, max_output_tokens=99, suspended=True)
    users = [alice, bob, charlie, User.objects.create_user("dora")]
    together = quota.limits_for_many(users)
    assert together == {user.pk: quota.limits_for(user) for user in users}
    assert together[alice.pk].allowed_model_ids == {chat_model.pk, reasoner_model.pk}
    assert together[bob.pk].allowed_model_ids == {chat_model.pk}
    assert together[charlie.pk].suspended and together[charlie.pk].max_output_tokens == 99
    assert together[users[3].pk].tokens_per_day == 10
