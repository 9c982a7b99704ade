"""An admin saves a policy whose allowed models are all disabled (the only one chosen was
retired). It was saved without a word, and its users could no longer chat or call the API: no
model they may use is enabled (a policy allowing no model at all is refused, and disabling a
policy's last model is said first). The save stands, and says so, naming the models."""

from __future__ import annotations

import pytest

from conversations import quota
from conversations.models import ModelConfig, Policy, User
from tests.support import admin_form, client_for, make_user

pytestmark = pytest.mark.django_db


def test_a_policy_saved_allowing_only_disabled_models_says_its_users_have_none(
    staff: User, chat_model: ModelConfig
) -> None:
    retired = ModelConfig.objects.create(
        name="retired", display_name="Retired", upstream_model="x", enabled=False
    )
    team = Policy.objects.create(name="Team", all_models=False)
    team.allowed_models.add(chat_model)
    dave = make_user("dave")
    client = client_for(staff)
    page = f"/admin/conversations/policy/{team.pk}/change/"

    response = client.post(
        page, admin_form(client, page, allowed_models=[str(retired.pk)]), follow=True
    )

    said = [(m.level_tag, str(m)) for m in response.context["messages"]]
    assert (
        "warning",
        "This policy leaves its users with no model to use: the model it allows (retired) is "
        "disabled. They (but those whose other groups' policies allow one) can no longer chat "
        "or call the API, and are told why. Enable a model it allows, or allow an enabled one.",
    ) in said
    assert list(team.allowed_models.all()) == [retired]  # saved all the same
    team.groups.create(name="team")
    dave.groups.set(team.groups.all())
    assert quota.usable_models(quota.limits_for(dave)) == []


def test_a_policy_with_an_enabled_model_says_nothing_of_it(
    staff: User, chat_model: ModelConfig
) -> None:
    team = Policy.objects.create(name="Team", all_models=False)
    team.allowed_models.add(chat_model)
    client = client_for(staff)
    page = f"/admin/conversations/policy/{team.pk}/change/"
    response = client.post(page, admin_form(client, page, tokens_per_day="900000"), follow=True)
    assert not [m for m in response.context["messages"] if m.level_tag == "warning"]
