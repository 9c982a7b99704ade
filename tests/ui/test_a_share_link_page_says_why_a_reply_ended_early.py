"""A share link's page says under a reply why it ended early — cut off at the token limit, or
withheld by the provider's content filter — as the conversation page does: in the transcript it
opens with, and when it watches the reply end live. Without a word the reader took a reply that
stops mid-sentence for the whole answer."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations import sharing
from conversations.models import Conversation
from tests.ui.conftest import Session, send, wait_until_idle

FILTERED = "The provider's content filter withheld the rest of this reply."
CUT_OFF = "The reply was cut off at the token limit."


def test_a_link_page_says_a_reply_was_filtered_or_cut_off(
    session: Session, ui_conversation: Conversation
) -> None:
    owner = session.page
    session.open(ui_conversation)
    send(owner, "Tell me [[sim: finish=content_filter say=Here is the first half]]")
    wait_until_idle(owner)
    _, token = sharing.create_share_link(ui_conversation.owner, ui_conversation.id)

    viewer = owner.context.new_page()
    viewer.goto(f"{session.server.url}/s/{token}/")
    expect(viewer.locator("#connection-status")).to_have_text("Live")
    replies = viewer.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(replies.first.get_by_role("note")).to_have_text(FILTERED)

    # Live: the note comes with the reply's end.
    send(owner, "More [[sim: finish=length say=Cut here]]")
    wait_until_idle(owner)
    expect(replies).to_have_count(2)
    expect(replies.last).to_contain_text("Cut here")
    expect(replies.last.get_by_role("note")).to_have_text(CUT_OFF)

    # And after a reload, from the server's transcript.
    viewer.reload()
    expect(viewer.locator("#connection-status")).to_have_text("Live")
    expect(replies.first.get_by_role("note")).to_have_text(FILTERED)
    expect(replies.last.get_by_role("note")).to_have_text(CUT_OFF)
    assert not session.errors, session.errors
