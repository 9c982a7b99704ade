"""A double click on Continue asks the server once, and no error is shown. The second click
reached the server before the page knew the reply had restarted, and was refused ("That reply
is still being written"), an error under a reply that was doing what was asked."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import expect

from conversations.models import Conversation, Message
from tests.ui.conftest import Session, send, wait_until_idle, words


def test_a_double_click_on_continue_continues_once_without_an_error(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    sent: list[dict[str, Any]] = []
    page.on(
        "websocket",
        lambda ws: ws.on("framesent", lambda payload: sent.append(json.loads(payload))),
    )
    session.open(ui_conversation)
    # The upstream sends five words and then nothing until it is stopped: each call (the reply,
    # then its continuation) is still being written whenever the test acts on it, however
    # slowly a loaded machine runs the test's steps.
    send(page, f"Count [[sim: stall_after=6 say={words(40)}]]")
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    content = reply.locator(".message-content")
    expect(content).to_contain_text("word4")
    page.get_by_role("button", name="Stop", exact=True).click()
    wait_until_idle(page)
    expect(reply).to_contain_text("Stopped.")
    stopped = Message.objects.get(conversation=ui_conversation, role="assistant").content

    reply.get_by_role("button", name="Continue", exact=True).dblclick()
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_visible()
    expect(content).not_to_have_text(stopped)  # the continuation's words are on the page
    # Stopped from the page: its stop follows both clicks, so a refusal of the second click
    # would be on the page by the time the reply shows it stopped.
    page.get_by_role("button", name="Stop", exact=True).click()
    wait_until_idle(page)
    expect(reply).to_contain_text("Stopped.")
    row = Message.objects.get(conversation=ui_conversation, role="assistant")
    assert row.status == "cancelled"
    assert row.content.startswith(stopped) and len(row.content) > len(stopped)
    assert [frame["type"] for frame in sent].count("reply.continue") == 1
    expect(page.locator("#composer-error")).to_have_text("")
