"""A policy that should allow only some models: choosing them while "All models" stays ticked
(its default) is refused saying so. Saved, the policy allowed every enabled model, and the
chosen list was silently ignored."""

from __future__ import annotations

import pytest

from conversations import quota
from conversations.models import ModelConfig, Policy, User
from tests.support import client_for
from tests.test_there_is_always_one_default_policy import policy_form

pytestmark = pytest.mark.django_db


def test_chosen_models_with_all_models_ticked_are_refused(
    staff: User, alice: User, chat_model: ModelConfig, reasoner_model: ModelConfig
) -> None:
    default = Policy.objects.get(is_default=True)
    url = f"/admin/conversations/policy/{default.pk}/change/"
    response = client_for(staff).post(url, policy_form(default, allowed_models=[chat_model.pk]))
    assert response.status_code == 200
    assert "untick it to allow only the models chosen here" in response.content.decode()
    default.refresh_from_db()
    assert default.all_models and not default.allowed_models.exists()

    response = client_for(staff).post(
        url, policy_form(default, all_models=None, allowed_models=[chat_model.pk])
    )
    assert response.status_code == 302
    assert quota.limits_for(alice).allowed_model_ids == frozenset({chat_model.pk})


@pytest.mark.parametrize("adding", [True, False])
def test_a_policy_that_allows_no_model_is_refused_on_its_models(
    staff: User, alice: User, chat_model: ModelConfig, adding: bool
) -> None:
    """ "All models" unticked and none chosen allowed no model at all: saved without a word,
    whoever it applied to could no longer chat nor call the API. Locking someone out is what
    suspending them is for."""
    default = Policy.objects.get(is_default=True)
    url = (
        "/admin/conversations/policy/add/"
        if adding
        else f"/admin/conversations/policy/{default.pk}/change/"
    )
    form = policy_form(default, all_models=None)
    if adding:
        form = {**form, "name": "Nothing", "is_default": None}
        form = {k: v for k, v in form.items() if v is not None}

    response = client_for(staff).post(url, form)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["allowed_models"], errors
    assert "allows no model" in errors["allowed_models"][0]
    assert "suspend" in errors["allowed_models"][0]
    default.refresh_from_db()
    assert default.all_models
    assert not Policy.objects.filter(name="Nothing").exists()
    assert quota.limits_for(alice).allows(chat_model)
