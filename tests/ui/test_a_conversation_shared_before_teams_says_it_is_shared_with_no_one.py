"""Alice shared a conversation with everyone; then the admin set up teams. It is shared with no
team now, so with no one but her: her sharing page says so and asks her to choose a team,
instead of showing "Shared with the team" ticked over the first of her teams as if it were
shared with that one. Choosing one and saving shares it with that team."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation, Team
from tests.ui.conftest import Session


def test_the_sharing_page_says_no_team_and_asks_for_one(
    session: Session, ui_team: Team, ui_conversation: Conversation
) -> None:
    Conversation.objects.filter(pk=ui_conversation.pk).update(visibility="team", team=None)
    Team.objects.create(name="apps").members.add(ui_conversation.owner)
    page = session.page
    page.goto(f"{session.server.url}/c/{ui_conversation.id}/sharing/")
    team = page.get_by_label("Team", exact=True)
    expect(team).to_have_accessible_description(
        "Shared with no team: it was shared with everyone before the administrator set up "
        "teams, and no one else sees it now. Choose a team and save, or make it private."
    )
    expect(team.locator("option:checked")).to_have_text("Choose a team")
    session.screenshot("sharing-no-team")

    team.select_option(label="ops")
    page.get_by_role("button", name="Save visibility").click()
    expect(page.locator("#no-team-notice")).to_have_count(0)
    expect(team.locator("option:checked")).to_have_text("ops")
    assert Conversation.objects.get(pk=ui_conversation.pk).team == ui_team
    assert not session.errors, session.errors
