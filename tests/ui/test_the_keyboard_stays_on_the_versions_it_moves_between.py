"""Keyboard only: Regenerate, an edit sent, and the version arrows each replace the article the
focus was in; the focus now goes to the new version's arrows (it fell to the page, so the next
Tab started again from the top bar and a second arrow press did nothing)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation
from tests.ui.conftest import Session, send, wait_until_idle


def test_the_keyboard_stays_on_the_versions_it_moves_between(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    send(page, "Name a colour")
    wait_until_idle(page)
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))

    reply.get_by_role("button", name="Regenerate", exact=True).focus()
    page.keyboard.press("Enter")
    versions = reply.get_by_role("group", name="Version 2 of 2")
    expect(versions.get_by_role("button", name="Previous version")).to_be_focused()
    wait_until_idle(page)

    # Enter again and again: back to the first version (its Previous is disabled, so the focus
    # is on Next), then forward.
    page.keyboard.press("Enter")
    versions = reply.get_by_role("group", name="Version 1 of 2")
    expect(versions.get_by_role("button", name="Next version")).to_be_focused()
    page.keyboard.press("Enter")
    versions = reply.get_by_role("group", name="Version 2 of 2")
    expect(versions.get_by_role("button", name="Previous version")).to_be_focused()

    # An edit sent from the keyboard: the focus is on the new question's versions.
    mine = page.get_by_role("article", name="You")
    mine.get_by_role("button", name="Edit", exact=True).focus()
    page.keyboard.press("Enter")
    editor = mine.get_by_role("textbox", name="Edit message")
    expect(editor).to_be_focused()
    page.keyboard.type(" Just one.")
    page.keyboard.press("Enter")
    versions = mine.get_by_role("group", name="Version 2 of 2")
    expect(versions.get_by_role("button", name="Previous version")).to_be_focused()
    wait_until_idle(page)
    assert not session.errors, session.errors
