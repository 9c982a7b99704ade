"""The notice after deleting a conversation is heard by a screen reader, and its Undo is within
a keyboard's reach before it goes: Ctrl+Z presses it (outside a text field), and it waits while
the focus is in it or the pointer on it (it went after 6 s wherever the reader was, and sits at
the end of the page, a long way by Tab)."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation, ModelConfig, User
from tests.ui.conftest import Session


def test_ctrl_z_undoes_the_delete_and_the_notice_waits_for_the_reader(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    for title in ["Kubernetes upgrade", "Lunch ideas", "Quarterly report"]:
        Conversation.objects.create(owner=ui_user, model=ui_chat_model, title=title)
    page = session.page
    page.clock.install()  # the welcome page: no socket to keep alive
    page.reload()
    sidebar = page.get_by_role("complementary", name="Conversations")
    notices = page.get_by_role("status").filter(has_text="Deleted")

    # By keyboard: delete, then Ctrl+Z from the conversation that took the focus.
    sidebar.get_by_role("button", name="Delete Lunch ideas").focus()
    page.keyboard.press("Enter")
    expect(sidebar.get_by_role("link", name="Kubernetes upgrade")).to_be_focused()
    expect(notices).to_contain_text("Deleted “Lunch ideas”.")  # the live region says it
    expect(page.get_by_role("button", name="Undo")).to_have_attribute(
        "aria-keyshortcuts", "Control+Z"
    )
    page.keyboard.press("Control+z")
    expect(sidebar.get_by_role("link", name="Lunch ideas")).to_be_focused()
    expect(page.get_by_role("button", name="Undo")).to_have_count(0)
    assert not Conversation.objects.get(title="Lunch ideas").deleted_at

    # The notice waits while the focus is on its Undo, long past its 6 s.
    sidebar.get_by_role("button", name="Delete Quarterly report").focus()
    page.keyboard.press("Enter")
    undo = page.get_by_role("button", name="Undo")
    undo.focus()
    page.clock.run_for(20_000)
    expect(undo).to_be_visible()
    # Left, it gives a moment more, then goes.
    sidebar.get_by_role("link", name="Lunch ideas").focus()
    page.clock.run_for(1_500)
    expect(undo).to_be_visible()
    page.clock.run_for(1_000)
    expect(undo).to_have_count(0)

    # And while the pointer is on it.
    sidebar.get_by_role("button", name="Delete Kubernetes upgrade").focus()
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Undo").hover()
    page.clock.run_for(20_000)
    page.get_by_role("button", name="Undo").click()
    expect(sidebar.get_by_role("link", name="Kubernetes upgrade")).to_be_visible()
    assert not Conversation.objects.get(title="Kubernetes upgrade").deleted_at
    assert Conversation.objects.get(title="Quarterly report").deleted_at
    assert not session.errors, session.errors
