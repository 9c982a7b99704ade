"""An admin opens the usage dashboard from a bookmark filtered by a user (a group, a model)
deleted since. The page showed "all" in that filter's select, over no usage at all ("0 calls",
"No usage in this period"): as if nothing had been used. It says that the filter names what is
no longer there, and the select shows it chosen."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from conversations.models import ModelConfig, User
from tests.support import client_for, make_user
from tests.test_usage_pages import spend

pytestmark = pytest.mark.django_db


def test_a_filter_naming_a_deleted_user_or_group_says_so(
    staff: User, alice: User, chat_model: ModelConfig
) -> None:
    spend(alice, chat_model, hit=0, miss=100, completion=20)
    bob = make_user("bob")
    interns = Group.objects.create(name="interns")
    gone_user, gone_group = bob.pk, interns.pk
    bob.delete()
    interns.delete()
    client = client_for(staff)

    html = client.get("/admin/usage/", {"user": gone_user, "group": gone_group}).content.decode()

    assert (
        f"The filters name a user no longer there (#{gone_user}) and a group no longer there "
        f"(#{gone_group}): no usage matches them."
    ) in html
    assert f'<option value="{gone_user}" selected>#{gone_user}: no such user</option>' in html
    assert f'<option value="{gone_group}" selected>#{gone_group}: no such group</option>' in html

    # A filter on what is there says nothing of the kind.
    html = client.get("/admin/usage/", {"user": alice.pk}).content.decode()
    assert "no longer there" not in html and "no such" not in html
