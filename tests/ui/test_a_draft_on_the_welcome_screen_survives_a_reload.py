"""The first message of a new conversation, typed on the welcome screen and not sent yet, is
kept for the tab as the conversation page's composer keeps its draft: a reload or a visit
elsewhere finds it again; whoever signs in next in the tab does not; once sent it is gone."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation, Message, ModelConfig, User
from tests.support import make_user
from tests.ui.conftest import Session, sign_in, wait_until_idle


def test_a_welcome_draft_is_back_after_a_reload_and_kept_per_account(
    session: Session, ui_conversation: Conversation, ui_chat_model: ModelConfig
) -> None:
    make_user("bob")
    page = session.page
    starter = page.get_by_role("textbox", name="Message", exact=True)
    starter.fill("the first question of a new chat\nwith a second line")

    page.reload()
    expect(starter).to_have_value("the first question of a new chat\nwith a second line")

    session.open(ui_conversation)  # elsewhere and back
    page.goto(f"{session.server.url}/")
    expect(starter).to_have_value("the first question of a new chat\nwith a second line")

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, session.server, "bob")
    expect(starter).to_have_value("")  # not Bob's

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, session.server, "alice")
    expect(starter).to_have_value("the first question of a new chat\nwith a second line")
    assert not session.errors, session.errors


def test_a_sent_welcome_message_leaves_no_draft(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    page = session.page
    starter = page.get_by_role("textbox", name="Message", exact=True)
    starter.fill("sent at once [[sim: say=ok]]")
    starter.press("Enter")
    page.wait_for_url(f"{session.server.url}/c/**")
    session.wait_connected()
    expect(page.get_by_role("article", name="DeepSeek Chat")).to_contain_text("ok")
    wait_until_idle(page)
    conversation = Conversation.objects.get(owner=ui_user)
    assert Message.objects.filter(conversation=conversation, role="user").count() == 1

    page.goto(f"{session.server.url}/")
    expect(page.get_by_role("textbox", name="Message", exact=True)).to_have_value("")
    assert not session.errors, session.errors
