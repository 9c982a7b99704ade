"""An audit entry's page shows what changed, field by field (before and after), and names the
rows a field points to (a policy's groups and models, a user's own policy) instead of their
ids. Before, it showed only the two rows as stored JSON, side by side: the admin diffed them by
eye and looked ids up elsewhere ("allowed_models": [1, 3])."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.contrib.auth.models import Group

from conversations.models import AuditEntry, ModelConfig, Policy, User, UserLimits
from tests.support import admin_form, client_for

pytestmark = pytest.mark.django_db


def what_changed(staff: User, entry: AuditEntry) -> list[tuple[str, str, str]]:
    page = client_for(staff).get(f"/admin/conversations/auditentry/{entry.pk}/change/")
    html = page.content.decode()
    start = html.index('<table class="audit-changes">')
    table = html[start : html.index("</table>", start)]
    return [
        tuple(unescape(cell) for cell in row)  # type: ignore[misc]
        for row in re.findall(
            r'<tr><th scope="row">(.*?)</th><td>(.*?)</td><td>(.*?)</td></tr>', table
        )
    ]


def test_a_policy_change_lists_each_field_and_names_models_and_groups(
    staff: User, chat_model: ModelConfig, reasoner_model: ModelConfig
) -> None:
    eng = Group.objects.create(name="eng")
    policy = Policy.objects.create(name="Team", tokens_per_day=1000)
    page = f"/admin/conversations/policy/{policy.pk}/change/"
    client = client_for(staff)
    form = admin_form(
        client,
        page,
        tokens_per_day="200000",
        all_models=None,
        allowed_models=[str(chat_model.pk), str(reasoner_model.pk)],
        groups=[str(eng.pk)],
    )
    assert client.post(page, form).status_code == 302
    entry = AuditEntry.objects.get(target_type="policy")
    assert what_changed(staff, entry) == [
        ("all_models", "yes", "no"),
        ("allowed_models", "none", "deepseek-chat, deepseek-reasoner"),
        ("groups", "none", "eng"),
        ("tokens_per_day", "1,000", "200,000"),
    ]


def test_a_row_deleted_since_is_named_by_its_id(staff: User, alice: User) -> None:
    solo = Policy.objects.create(name="Solo")
    page = f"/admin/conversations/user/{alice.pk}/change/"
    client = client_for(staff)
    limits = UserLimits.objects.create(user=alice)
    form = admin_form(client, page, **{"limits-0-policy": str(solo.pk)})
    assert client.post(page, form).status_code == 302
    entry = AuditEntry.objects.get(target_type="userlimits", target_id=str(limits.pk))
    assert what_changed(staff, entry) == [("policy", "blank", "Solo")]
    solo_pk = solo.pk
    solo.delete()
    assert what_changed(staff, entry) == [("policy", "blank", f"#{solo_pk} (deleted since)")]


def test_a_creation_has_no_before(staff: User) -> None:
    client = client_for(staff)
    form = admin_form(client, "/admin/auth/group/add/", name="<i>ops</i>")
    assert client.post("/admin/auth/group/add/", form).status_code == 302
    entry = AuditEntry.objects.get(target_type="group")
    assert ("name", "", "<i>ops</i>") in what_changed(staff, entry)  # text, not markup
