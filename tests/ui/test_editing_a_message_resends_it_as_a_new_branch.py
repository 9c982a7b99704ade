from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation, Message, User, UserLimits
from tests.support import usage_account
from tests.ui.conftest import Session, send, wait_until_idle


def test_editing_a_message_resends_it_and_keeps_the_original(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    send(page, "First try [[sim: say=Alpha answer]]")
    wait_until_idle(page)
    mine = page.get_by_role("article", name="You")
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(reply.locator(".message-content")).to_have_text("Alpha answer")

    # Escape closes the editor and the focus goes back to its Edit button.
    mine.get_by_role("button", name="Edit", exact=True).click()
    mine.get_by_role("textbox", name="Edit message").press("Escape")
    expect(mine.get_by_role("button", name="Edit", exact=True)).to_be_focused()

    mine.get_by_role("button", name="Edit", exact=True).click()
    editor = mine.get_by_role("textbox", name="Edit message")
    expect(editor).to_have_value("First try [[sim: say=Alpha answer]]")
    editor.fill("Second try [[sim: say=Beta answer]]")
    editor.press("Enter")

    expect(mine.locator(".branch-pos")).to_have_text("2 / 2")
    expect(mine).to_contain_text("Second try")
    expect(reply.locator(".message-content")).to_have_text("Beta answer", timeout=20000)
    wait_until_idle(page)
    users = Message.objects.filter(conversation=ui_conversation, role="user").order_by("created_at")
    assert [u.content.split(" [[")[0] for u in users] == ["First try", "Second try"]
    assert users[0].parent_id == users[1].parent_id

    mine.get_by_role("button", name="Previous version").click()
    expect(mine).to_contain_text("First try")
    expect(reply.locator(".message-content")).to_have_text("Alpha answer")


def test_a_refused_edit_keeps_the_edited_text(
    session: Session, ui_user: User, ui_conversation: Conversation
) -> None:
    """The server refuses the edit (here: the day's tokens ran out meanwhile): the editor comes
    back with what was typed, to send once that is sorted out."""
    page = session.page
    session.open(ui_conversation)
    send(page, "First try [[sim: say=Alpha answer]]")
    wait_until_idle(page)
    UserLimits.objects.create(user=ui_user, tokens_per_day=1000)
    usage_account(ui_user, day_used=1000)
    mine = page.get_by_role("article", name="You")
    mine.get_by_role("button", name="Edit", exact=True).click()
    editor = mine.get_by_role("textbox", name="Edit message")
    editor.fill("A long, carefully rewritten question")
    editor.press("Enter")
    expect(page.locator("#composer-error")).to_contain_text("tokens")
    expect(mine.get_by_role("textbox", name="Edit message")).to_have_value(
        "A long, carefully rewritten question"
    )
    assert Message.objects.filter(conversation=ui_conversation, role="user").count() == 1


def test_an_edit_saved_unchanged_adds_no_version(
    session: Session, ui_conversation: Conversation
) -> None:
    """Saved as it was, an edit closes as Cancel does: it used to send a copy of the message as
    a second version (and a second answer to it), which Regenerate is for."""
    page = session.page
    session.open(ui_conversation)
    send(page, "Only try [[sim: say=Alpha answer]]")
    wait_until_idle(page)
    mine = page.get_by_role("article", name="You")
    mine.get_by_role("button", name="Edit", exact=True).click()
    mine.get_by_role("textbox", name="Edit message").press("Enter")
    expect(mine.get_by_role("textbox", name="Edit message")).to_have_count(0)
    expect(mine.get_by_role("button", name="Edit", exact=True)).to_be_focused()
    expect(mine.locator(".branch-pos")).to_have_count(0)
    page.wait_for_timeout(500)  # a message.edit sent would have made its version by now
    assert Message.objects.filter(conversation=ui_conversation, role="user").count() == 1
    assert not session.errors, session.errors
