"""The sidebar by keyboard: deleting a conversation leaves the focus on the next one listed (it
fell to the page, and Tab started again from the top), Undo puts it on the one restored, and the
hidden file input of "Import JSON…" shows its focus on its label (Tab reached it unseen). A
rename ended by Enter or Escape leaves the focus on the conversation's link (it fell to the page
with the title's field)."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation, ModelConfig, User
from tests.ui.conftest import Session


def test_delete_and_undo_keep_the_focus_in_the_list(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    for title in ["Kubernetes upgrade", "Lunch ideas", "Quarterly report"]:
        Conversation.objects.create(owner=ui_user, model=ui_chat_model, title=title)
    page = session.page
    page.reload()
    sidebar = page.get_by_role("complementary", name="Conversations")
    sidebar.get_by_role("link", name="Lunch ideas").focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(sidebar.get_by_role("button", name="Delete Lunch ideas")).to_be_focused()
    page.keyboard.press("Enter")
    expect(sidebar.get_by_role("link", name="Lunch ideas")).to_have_count(0)
    expect(sidebar.get_by_role("link", name="Kubernetes upgrade")).to_be_focused()

    page.get_by_role("button", name="Undo").click()
    expect(sidebar.get_by_role("link", name="Lunch ideas")).to_be_focused()

    # The last one listed: the focus goes to the one before it.
    sidebar.get_by_role("button", name="Delete Kubernetes upgrade").focus()
    page.keyboard.press("Enter")
    expect(sidebar.get_by_role("link", name="Lunch ideas")).to_be_focused()


def test_a_rename_leaves_the_focus_on_the_conversation_renamed(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    for title in ["Kubernetes upgrade", "Lunch ideas"]:
        Conversation.objects.create(owner=ui_user, model=ui_chat_model, title=title)
    page = session.page
    page.reload()
    sidebar = page.get_by_role("complementary", name="Conversations")
    sidebar.get_by_role("button", name="Rename Lunch ideas").focus()
    page.keyboard.press("Enter")
    field = sidebar.get_by_role("textbox", name="New title")
    expect(field).to_be_focused()
    page.keyboard.type("Team lunch")
    page.keyboard.press("Enter")
    expect(sidebar.get_by_role("link", name="Team lunch")).to_be_focused()
    expect(sidebar.get_by_role("button", name="Rename Team lunch")).to_be_visible()

    # Escape: the title is left as it was, and the focus on its link as well.
    page.keyboard.press("Tab")
    expect(sidebar.get_by_role("button", name="Rename Team lunch")).to_be_focused()
    page.keyboard.press("Enter")
    expect(field).to_be_focused()
    page.keyboard.type("Something else")
    page.keyboard.press("Escape")
    expect(field).to_have_count(0)
    expect(sidebar.get_by_role("link", name="Team lunch")).to_be_focused()
    assert Conversation.objects.filter(title="Team lunch").exists()


def test_the_import_button_shows_the_keyboards_focus(session: Session) -> None:
    page = session.page
    sidebar = page.get_by_role("complementary", name="Conversations")
    label = sidebar.locator("label.file-button")
    assert label.evaluate("node => getComputedStyle(node).outlineStyle") == "none"
    sidebar.get_by_role("searchbox", name="Search conversations").focus()
    page.keyboard.press("Tab")  # no conversations listed: the import's file input is next
    expect(sidebar.locator("#import-file")).to_be_focused()
    assert label.evaluate("node => getComputedStyle(node).outlineStyle") == "solid"
