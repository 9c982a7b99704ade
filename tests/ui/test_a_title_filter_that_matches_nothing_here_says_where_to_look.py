"""Typing in the sidebar's search box filters the titles listed, one page of them: when none
matches, the sidebar says so, that Enter searches the titles of all of them, and links to the
search of their messages (Enter finds titles only). It went blank, and an older
conversation past the first page looked gone."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation, ModelConfig, User
from tests.ui.conftest import Session

SAID = (
    "No title listed here matches. Press Enter to search the titles of all your "
    "conversations, or search their messages."
)


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
    expect(note).to_have_text(SAID)
    expect(box).to_have_accessible_description(SAID)
    # Enter searches titles; the words said in the conversations are the search page's.
    messages = note.get_by_role("link", name="search their messages")
    expect(messages).to_have_attribute("href", "/search/?q=kube")

    box.press("Enter")
    expect(sidebar.get_by_role("link", name="Kubernetes upgrade")).to_be_visible()
    expect(note).to_be_hidden()

    box.fill("")
    expect(note).to_be_hidden()
