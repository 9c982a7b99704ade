"""Typing in the sidebar's search box filters the titles listed, one page of them: when none
matches, the sidebar says so and that Enter searches all of them. It went blank, and an older
conversation past the first page looked gone."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation, ModelConfig, User
from tests.ui.conftest import Session


def test_a_filter_matching_nothing_here_points_to_the_full_search(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    Conversation.objects.create(owner=ui_user, model=ui_chat_model, title="Kubernetes upgrade")
    for number in range(35):  # the older one is past the first page
        Conversation.objects.create(owner=ui_user, model=ui_chat_model, title=f"Standup {number}")
    page = session.page
    page.reload()
    sidebar = page.get_by_role("complementary", name="Conversations")
    box = sidebar.get_by_role("searchbox", name="Search conversations")
    note = sidebar.get_by_text("No title listed here matches.")
    expect(sidebar.get_by_role("link", name="Kubernetes upgrade")).to_have_count(0)

    box.fill("standup 3")
    expect(sidebar.get_by_role("link", name="Standup 34")).to_be_visible()
    expect(note).to_be_hidden()

    box.fill("kube")
    expect(sidebar.locator(".conversation-list a:visible")).to_have_count(0)
    expect(note).to_be_visible()
    expect(note).to_have_text(
        "No title listed here matches. Press Enter to search all your conversations."
    )
    expect(box).to_have_accessible_description(
        "No title listed here matches. Press Enter to search all your conversations."
    )

    box.press("Enter")
    expect(sidebar.get_by_role("link", name="Kubernetes upgrade")).to_be_visible()
    expect(note).to_be_hidden()

    box.fill("")
    expect(note).to_be_hidden()
