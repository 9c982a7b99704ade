"""A deletion in the admin that changes other rows (a policy's groups, a user's assigned policy,
a member's groups) leaves an entry for each of them, not only for the row deleted."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from conversations import quota
from conversations.models import AuditEntry, ModelConfig, ModelPrice, Policy, User, UserLimits
from tests.support import client_for

pytestmark = pytest.mark.django_db


def test_deleting_a_group_records_the_policies_and_members_it_leaves(
    staff: User, alice: User, bob: User
) -> None:
    engineers = Group.objects.create(name="engineers")
    other = Group.objects.create(name="other")
    policy = Policy.objects.create(name="engineering", tokens_per_day=10**9)
    policy.groups.add(engineers, other)
    alice.groups.add(engineers)
    assert quota.limits_for(alice).tokens_per_day == 10**9

    response = client_for(staff).post(f"/admin/auth/group/{engineers.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert quota.limits_for(alice).tokens_per_day != 10**9  # her limits changed

    deleted = AuditEntry.objects.get(target_type="group")
    assert (deleted.action, deleted.actor, deleted.target_repr) == ("delete", staff, "engineers")
    change = AuditEntry.objects.get(target_type="policy")
    assert (change.action, change.actor, change.target_id) == ("change", staff, str(policy.pk))
    assert (change.before["groups"], change.after["groups"]) == (
        sorted([engineers.pk, other.pk]),
        [other.pk],
    )
    member = AuditEntry.objects.get(target_type="user")
    assert (member.action, member.target_id) == ("change", str(alice.pk))
    assert (member.before["groups"], member.after["groups"]) == ([engineers.pk], [])
    # And the policy her groups carried, by which her limits changed.
    assert (member.before["group_policies"], member.after["group_policies"]) == (
        ["engineering"],
        [],
    )
    assert "password" not in member.before  # the account's flags and grants only
    assert AuditEntry.objects.count() == 3  # bob was in no group: nothing about him


def test_changing_a_group_in_the_admin_is_audited(staff: User) -> None:
    group = Group.objects.create(name="engineers")
    response = client_for(staff).post(
        f"/admin/auth/group/{group.pk}/change/", {"name": "platform", "permissions": []}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = AuditEntry.objects.get(target_type="group")
    assert (entry.before["name"], entry.after["name"]) == ("engineers", "platform")


def test_deleting_a_policy_records_each_user_who_had_it(
    staff: User, alice: User, bob: User, charlie: User
) -> None:
    vip = Policy.objects.create(name="vip", tokens_per_day=10**9)
    UserLimits.objects.create(user=alice, policy=vip, tokens_per_month=5)
    UserLimits.objects.create(user=bob, policy=vip)
    UserLimits.objects.create(user=charlie)  # no policy of her own: unchanged

    client = client_for(staff)
    response = client.post(f"/admin/conversations/policy/{vip.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302

    assert AuditEntry.objects.get(target_type="policy").action == "delete"
    entries = AuditEntry.objects.filter(target_type="userlimits").order_by("target_repr")
    assert [e.target_id for e in entries] == [str(alice.limits.pk), str(bob.limits.pk)]
    for entry in entries:
        assert entry.action == "change" and entry.actor == staff
        assert (entry.before["policy"], entry.after["policy"]) == (vip.pk, None)
    assert entries[0].after["tokens_per_month"] == 5  # the rest of her limits as they are


def test_deleting_a_model_records_the_policies_restricted_to_it_and_its_prices(
    staff: User, chat_model: ModelConfig, reasoner_model: ModelConfig
) -> None:
    spare = ModelConfig.objects.create(name="spare", display_name="Spare", upstream_model="x")
    price = ModelPrice.objects.create(
        model=spare, effective_from="2026-01-01", input_cache_hit=1, input_cache_miss=1, output=1
    )
    restricted = Policy.objects.create(name="restricted", all_models=False)
    restricted.allowed_models.set([spare, chat_model])

    response = client_for(staff).post(
        f"/admin/conversations/modelconfig/{spare.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302

    change = AuditEntry.objects.get(target_type="policy")
    assert (change.before["allowed_models"], change.after["allowed_models"]) == (
        sorted([spare.pk, chat_model.pk]),
        [chat_model.pk],
    )
    gone = AuditEntry.objects.get(target_type="modelprice")
    assert (gone.action, gone.target_id, gone.after) == ("delete", str(price.pk), None)
    assert AuditEntry.objects.get(target_type="modelconfig").action == "delete"
