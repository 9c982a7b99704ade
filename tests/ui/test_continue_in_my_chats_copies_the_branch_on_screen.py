"""A teammate reading a shared conversation who moves to an older version of a reply and
presses "Continue in my chats" gets a copy of the branch on screen, not the newest one."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from conversations.models import Conversation, Message
from tests.support import make_user
from tests.ui.conftest import LiveServer, new_session


def test_the_fork_is_of_the_version_the_reader_looks_at(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation
) -> None:
    bob = make_user("bob", first_name="Bob")
    Conversation.objects.filter(pk=ui_conversation.pk).update(visibility="team")
    question = Message.objects.create(
        conversation=ui_conversation,
        role="user",
        author=ui_conversation.owner,
        content="Where should the offsite be?",
    )
    for text in ("Lisbon, in the spring.", "Oslo, in the summer."):  # the second is newer
        Message.objects.create(
            conversation=ui_conversation,
            parent=question,
            role="assistant",
            model=ui_conversation.model,
            content=text,
            status="complete",
        )

    reader = new_session(browser, chat_server, username="bob")
    reader.open(ui_conversation)
    page = reader.page
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(reply.locator(".message-content")).to_have_text("Oslo, in the summer.")
    reply.get_by_role("button", name="Previous version").click()
    expect(reply.locator(".message-content")).to_have_text("Lisbon, in the spring.")

    page.get_by_role("button", name="Continue in my chats").click()
    page.wait_for_url(re.compile(r"/c/[0-9a-f-]+/$"))
    fork = Conversation.objects.get(owner=bob)
    assert fork.pk != ui_conversation.pk
    copied = list(fork.messages.order_by("created_at").values_list("content", flat=True))
    assert copied == ["Where should the offsite be?", "Lisbon, in the spring."]
    expect(page.get_by_role("article", name=re.compile("^DeepSeek Chat"))).to_contain_text(
        "Lisbon, in the spring."
    )
