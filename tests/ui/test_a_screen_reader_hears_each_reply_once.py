"""The message list is not a live region (a screen reader re-read the conversation on every
delta): the page's announcer says once that a reply started, and once how it ended."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation
from tests.ui.conftest import Session, send, wait_until_idle, words

# Every text the announcer is given, in order (a new child each time).
RECORD_ANNOUNCEMENTS = """
window.announced = [];
document.addEventListener("DOMContentLoaded", () => {
  const region = document.getElementById("announcer");
  new MutationObserver(() => {
    if (region.textContent) window.announced.push(region.textContent);
  }).observe(region, { childList: true, subtree: true, characterData: true });
});
"""


def announced(session: Session) -> list[str]:
    return list(session.page.evaluate("window.announced"))


def test_each_reply_is_announced_when_it_starts_and_when_it_ends(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    page.add_init_script(RECORD_ANNOUNCEMENTS)
    session.open(ui_conversation)
    messages = page.locator(".messages")
    assert messages.evaluate("list => list.closest('[aria-live]')") is None
    expect(page.locator("#announcer")).to_have_attribute("aria-live", "polite")

    send(
        page, "Status? [[sim: tokens_per_s=20 say=The build is **green** and `main` is deployed.]]"
    )
    wait_until_idle(page)
    expect(page.locator("#announcer")).to_have_text(
        "DeepSeek Chat replied: The build is green and main is deployed."
    )
    assert announced(session) == [
        "DeepSeek Chat is replying…",
        "DeepSeek Chat replied: The build is green and main is deployed.",
    ]

    # A reply that fails says so, with its reason, once.
    send(page, "Again [[sim: fault=400]]")
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat")).last
    error = reply.locator(".message-error")
    expect(error).to_be_visible()
    wait_until_idle(page)
    reason = error.inner_text()
    expect(page.locator("#announcer")).to_have_text(f"DeepSeek Chat did not finish: {reason}")
    assert announced(session)[2:] == [
        "DeepSeek Chat is replying…",
        f"DeepSeek Chat did not finish: {reason}",
    ]

    # A stopped reply: stopped, not its text.
    send(page, f"Count [[sim: tokens_per_s=8 say={words(60)}]]")
    expect(page.get_by_role("article", name=re.compile("^DeepSeek Chat")).last).to_contain_text(
        "word2"
    )
    page.get_by_role("button", name="Stop", exact=True).click()
    wait_until_idle(page)
    expect(page.locator("#announcer")).to_have_text("Reply stopped.")
    assert announced(session)[4:] == ["DeepSeek Chat is replying…", "Reply stopped."]
    assert not session.errors, session.errors
