from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation, ModelConfig, User
from tests.ui.conftest import Session


def test_new_chat_starts_a_conversation_with_the_chosen_model(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    page = session.page
    sidebar = page.get_by_role("complementary", name="Conversations")
    sidebar.get_by_label("Model for a new chat").select_option(label="DeepSeek Reasoner")
    sidebar.get_by_role("button", name="New chat").click()
    session.wait_connected()
    conversation = Conversation.objects.get(owner=ui_user)
    assert conversation.model.name == "deepseek-reasoner"
    assert page.url.endswith(f"/c/{conversation.id}/")
    expect(page.locator("#composer-estimate")).to_contain_text("DeepSeek Reasoner")


def test_the_welcome_screen_starts_a_chat_with_the_first_message(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    page = session.page
    page.get_by_role("textbox", name="Message", exact=True).fill("Hello there [[sim: say=Hi!]]")
    session.screenshot("welcome")
    page.get_by_role("textbox", name="Message", exact=True).press("Enter")
    session.wait_connected()
    expect(page.get_by_role("article", name="DeepSeek Chat")).to_contain_text("Hi!")
    assert Conversation.objects.get(owner=ui_user).messages.count() == 2


def test_the_sidebar_renames_deletes_with_undo_and_searches(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    for title in ["Kubernetes upgrade", "Lunch ideas", "Quarterly report"]:
        Conversation.objects.create(owner=ui_user, model=ui_chat_model, title=title)
    page = session.page
    page.reload()
    sidebar = page.get_by_role("complementary", name="Conversations")
    links = sidebar.locator(".conversation-list a")
    expect(links).to_have_text(["Quarterly report", "Lunch ideas", "Kubernetes upgrade"])

    sidebar.get_by_role("searchbox", name="Search conversations").fill("lunch")
    expect(sidebar.get_by_role("link", name="Lunch ideas")).to_be_visible()
    expect(sidebar.get_by_role("link", name="Quarterly report")).to_be_hidden()
    sidebar.get_by_role("searchbox", name="Search conversations").fill("")

    sidebar.get_by_role("button", name="Rename Lunch ideas").click()
    title = sidebar.get_by_role("textbox", name="New title")
    title.fill("Team lunch")
    title.press("Enter")
    expect(sidebar.get_by_role("link", name="Team lunch")).to_be_visible()
    assert Conversation.objects.filter(owner=ui_user, title="Team lunch").exists()

    sidebar.get_by_role("button", name="Delete Quarterly report").click()
    expect(sidebar.get_by_role("link", name="Quarterly report")).to_have_count(0)
    assert Conversation.objects.get(title="Quarterly report").deleted_at is not None
    page.get_by_role("button", name="Undo").click()
    expect(sidebar.get_by_role("link", name="Quarterly report")).to_be_visible()
    page.wait_for_timeout(300)
    assert Conversation.objects.get(title="Quarterly report").deleted_at is None

    # Server-side search (Enter submits the search form).
    sidebar.get_by_role("searchbox", name="Search conversations").fill("kube")
    sidebar.get_by_role("searchbox", name="Search conversations").press("Enter")
    expect(links).to_have_text(["Kubernetes upgrade"])
