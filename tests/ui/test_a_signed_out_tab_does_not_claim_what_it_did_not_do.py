"""Signed out in another tab (or the session expired): the sidebar's requests are answered
with the sign-in page, and the page must say so rather than act as if they had worked."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation, ModelConfig, User
from tests.ui.conftest import Session


def sign_out_in_another_tab(session: Session) -> None:
    other = session.page.context.new_page()
    other.goto(f"{session.server.url}/")
    other.get_by_role("button", name="Sign out").click()
    other.wait_for_url(f"{session.server.url}/accounts/login/")
    other.close()


def test_delete_and_rename_after_signing_out_say_so_and_change_nothing(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    Conversation.objects.create(owner=ui_user, model=ui_chat_model, title="Lunch ideas")
    page = session.page
    page.reload()
    sidebar = page.get_by_role("complementary", name="Conversations")
    expect(sidebar.get_by_role("link", name="Lunch ideas")).to_be_visible()
    sign_out_in_another_tab(session)

    sidebar.get_by_role("button", name="Delete Lunch ideas").click()
    expect(page.locator(".toast")).to_contain_text("signed out")
    expect(page.locator(".toast")).not_to_contain_text("Deleted")
    expect(sidebar.get_by_role("link", name="Lunch ideas")).to_be_visible()
    assert Conversation.objects.get(title="Lunch ideas").deleted_at is None

    sidebar.get_by_role("button", name="Rename Lunch ideas").click()
    title = sidebar.get_by_role("textbox", name="New title")
    title.fill("Team lunch")
    title.press("Enter")
    expect(page.locator(".toast").last).to_contain_text("signed out")
    expect(sidebar.get_by_role("link", name="Lunch ideas")).to_be_visible()
    assert not [error for error in session.errors if "TypeError" in error], session.errors


def test_the_welcome_screen_says_so_instead_of_opening_a_missing_page(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    page = session.page
    sign_out_in_another_tab(session)
    page.get_by_role("textbox", name="Message", exact=True).fill("Hello")
    page.get_by_role("button", name="Start chat").click()
    expect(page.locator("#starter-error")).to_contain_text("signed out")
    assert page.url == f"{session.server.url}/"
    assert not Conversation.objects.filter(owner=ui_user).exists()
