"""Disabling or deleting the last enabled model a policy allows is said before it is done,
naming the policy: unticking "Enabled" is refused unless "Disable it all the same" is ticked,
and the delete confirmation (one model, or several from the list) names the policies left
with no model. A policy saved with no model is refused; these two paths left one so without
a word (its users found out when their chat stopped)."""

from __future__ import annotations

import pytest

from conversations.models import AuditEntry, ModelConfig, Policy, User
from tests.support import admin_form, client_for

pytestmark = pytest.mark.django_db

LIST = "/admin/conversations/modelconfig/"
CONFIRM = "disable_all_the_same"


def change_page(model: ModelConfig) -> str:
    return f"{LIST}{model.pk}/change/"


@pytest.fixture
def spare(db: None) -> ModelConfig:
    return ModelConfig.objects.create(name="spare", display_name="Spare", upstream_model="x")


@pytest.fixture
def spare_only(spare: ModelConfig, chat_model: ModelConfig) -> Policy:
    policy = Policy.objects.create(name="Spare only", all_models=False)
    policy.allowed_models.add(spare)
    return policy


def test_unticking_enabled_is_refused_naming_the_policy_unless_confirmed(
    staff: User, spare: ModelConfig, spare_only: Policy
) -> None:
    client = client_for(staff)
    page = change_page(spare)
    # Offered on the page: this model is the policy's last.
    assert f'name="{CONFIRM}"' in client.get(page).content.decode()
    form = admin_form(client, page, enabled=None)

    refused = client.post(page, form)
    assert refused.status_code == 200
    html = refused.content.decode()
    assert "leaves policy “Spare only” with no enabled model" in html
    assert "Disable it all the same" in html
    spare.refresh_from_db()
    assert spare.enabled and not AuditEntry.objects.exists()

    assert client.post(page, {**form, CONFIRM: "on"}).status_code == 302
    spare.refresh_from_db()
    assert not spare.enabled
    (entry,) = AuditEntry.objects.filter(target_type="modelconfig")
    assert (entry.before["enabled"], entry.after["enabled"]) == (True, False)


def test_a_model_a_policy_can_do_without_is_disabled_at_once(
    staff: User, spare: ModelConfig, spare_only: Policy, chat_model: ModelConfig
) -> None:
    spare_only.allowed_models.add(chat_model)  # another enabled model left to it
    client = client_for(staff)
    assert CONFIRM not in client.get(change_page(spare)).content.decode()  # nothing to confirm
    form = admin_form(client, change_page(spare), enabled=None)
    assert client.post(change_page(spare), form).status_code == 302
    spare.refresh_from_db()
    assert not spare.enabled


def test_the_last_enabled_model_leaves_the_policies_of_all_models_without_one(
    staff: User, chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    Policy.objects.create(name="Default")  # all models, as "Everyone"
    Policy.objects.create(name="Everyone", is_default=True)
    ModelConfig.objects.exclude(pk=chat_model.pk).update(enabled=False)
    client = client_for(staff)
    form = admin_form(client, change_page(chat_model), enabled=None)
    refused = client.post(change_page(chat_model), form)
    assert refused.status_code == 200
    html = refused.content.decode()
    assert (
        "Disabling this model leaves policies “Default”, “Everyone” (the default) with no" in html
    )


def test_the_delete_pages_name_the_policies_left_without_a_model(
    staff: User, spare: ModelConfig, spare_only: Policy
) -> None:
    other = ModelConfig.objects.create(name="other", display_name="Other", upstream_model="y")
    client = client_for(staff)
    says = "leaves policy “Spare only” with no enabled model"

    page = client.get(f"{LIST}{spare.pk}/delete/").content.decode()
    assert "Deleting this model " + says in page
    bulk = client.post(
        LIST, {"action": "delete_selected", "_selected_action": [str(spare.pk), str(other.pk)]}
    ).content.decode()
    assert "Deleting these models " + says in bulk
    assert says not in client.get(f"{LIST}{other.pk}/delete/").content.decode()

    # Confirmed ("Yes, I'm sure"): deleted, and the policy's change audited.
    assert client.post(f"{LIST}{spare.pk}/delete/", {"post": "yes"}).status_code == 302
    change = AuditEntry.objects.get(target_type="policy")
    assert (change.before["allowed_models"], change.after["allowed_models"]) == ([spare.pk], [])
