"""One policy is always the default (users outside every policy's groups get it): ticking it
on another policy moves it there, audited; it cannot be unticked or deleted where it is. With
no default those users would have no limits at all."""

from __future__ import annotations

from typing import Any

import pytest

from conversations import quota
from conversations.models import AuditEntry, Policy, User
from tests.support import client_for

pytestmark = pytest.mark.django_db


def policy_form(policy: Policy, **changes: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "name": policy.name,
        "all_models": "on",
        "api_access": "on",
        "tokens_per_day": policy.tokens_per_day or "",
    }
    if policy.is_default:
        form["is_default"] = "on"
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def the_default() -> Policy:
    return Policy.objects.get(is_default=True)


def test_ticking_default_on_another_policy_moves_it_there_and_audits_both(
    staff: User, alice: User
) -> None:
    old = the_default()
    strict = Policy.objects.create(name="strict", tokens_per_day=1000)
    response = client_for(staff).post(
        f"/admin/conversations/policy/{strict.pk}/change/", policy_form(strict, is_default="on")
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert the_default() == strict
    assert quota.limits_for(alice).tokens_per_day == 1000  # alice is in no group
    gave_up = AuditEntry.objects.get(target_type="policy", target_id=str(old.pk))
    assert (gave_up.action, gave_up.actor) == ("change", staff)
    assert gave_up.before is not None and gave_up.after is not None
    assert (gave_up.before["is_default"], gave_up.after["is_default"]) == (True, False)
    took = AuditEntry.objects.get(target_type="policy", target_id=str(strict.pk))
    assert took.before is not None and took.after is not None
    assert (took.before["is_default"], took.after["is_default"]) == (False, True)


def test_the_default_cannot_be_unticked(staff: User) -> None:
    default = the_default()
    response = client_for(staff).post(
        f"/admin/conversations/policy/{default.pk}/change/",
        policy_form(default, is_default=None),
    )
    assert response.status_code == 200  # the form again, with the error
    assert "One policy is always the default" in response.content.decode()
    assert the_default() == default
    assert not AuditEntry.objects.exists()


def test_the_default_cannot_be_deleted_alone_or_in_a_batch(staff: User) -> None:
    default = the_default()
    other = Policy.objects.create(name="other")
    client = client_for(staff)
    assert (
        client.post(
            f"/admin/conversations/policy/{default.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    response = client.post(
        "/admin/conversations/policy/",
        {"action": "delete_selected", "_selected_action": [default.pk, other.pk], "post": "yes"},
    )
    assert response.status_code == 403  # the whole batch is refused
    assert Policy.objects.filter(pk=other.pk).exists()
    assert Policy.objects.filter(pk=default.pk, is_default=True).exists()
    # Another policy still goes on its own.
    assert (
        client.post(f"/admin/conversations/policy/{other.pk}/delete/", {"post": "yes"}).status_code
        == 302
    )
    assert not Policy.objects.filter(pk=other.pk).exists()
