"""The admin is told, before saving, who will see what when the first team is created or the
last one deleted: the add page of the first team says that what everyone sees will be seen by
no one else; the delete confirmation of the last team that what teams shared, and what was
shared with no team, will be everyone's. Of a team that is not the last, what it shared will
be no one's. The pages said nothing of it: deleting the last team quietly opened every team's
conversations to every active user."""

from __future__ import annotations

import html

import pytest

from conversations.models import Conversation, ModelConfig, Team, User
from tests.support import client_for

pytestmark = pytest.mark.django_db


def page(client: object, path: str) -> str:
    response = client.get(path)  # type: ignore[attr-defined]
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_the_first_team_says_what_everyone_will_no_longer_see(
    staff: User, alice: User, chat_model: ModelConfig
) -> None:
    admin = client_for(staff)
    assert "This is the first team" not in page(admin, "/admin/conversations/team/add/")
    for title in ("One", "Two"):
        Conversation.objects.create(owner=alice, model=chat_model, title=title, visibility="team")
    Conversation.objects.create(owner=alice, model=chat_model, title="Private")
    assert (
        "This is the first team: the 2 conversations now shared with everyone will be shared "
        "with no team, so with no one but their owners and collaborators, until their owners "
        "choose a team." in page(admin, "/admin/conversations/team/add/")
    )
    Team.objects.create(name="ops")
    assert "This is the first team" not in page(admin, "/admin/conversations/team/add/")


def test_deleting_a_team_says_who_will_see_what_it_shared(
    staff: User, alice: User, chat_model: ModelConfig
) -> None:
    admin = client_for(staff)
    ops, dev = Team.objects.create(name="ops"), Team.objects.create(name="dev")
    Conversation.objects.create(owner=alice, model=chat_model, visibility="team", team=ops)
    Conversation.objects.create(owner=alice, model=chat_model, visibility="team", team=None)

    confirm = page(admin, f"/admin/conversations/team/{ops.pk}/delete/")
    assert (
        "The 1 conversation shared with it will be shared with no team: no one but its owner "
        "and collaborators will see it, until its owner chooses another team." in confirm
    )
    assert "No team will be left" not in confirm

    dev.delete()
    confirm = page(admin, f"/admin/conversations/team/{ops.pk}/delete/")
    assert (
        "No team will be left: the 2 conversations shared with a team or with none will be "
        "shared with every active user, as in a deployment without teams." in confirm
    )
