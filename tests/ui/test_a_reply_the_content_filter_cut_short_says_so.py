"""A reply that ends with ``finish_reason: content_filter`` is not the whole answer: the provider
withheld the rest. The reader is told so under it (as for one cut off at the token limit), and a
screen reader hears it with the reply; without a word it read as a finished answer that stopped
mid-sentence."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation
from tests.ui.conftest import Session, send, wait_until_idle


def test_a_filtered_reply_and_a_cut_off_one_each_say_why_they_end(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    replies = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))

    send(page, "Tell me [[sim: finish=content_filter say=Here is the first half]]")
    wait_until_idle(page)
    filtered = replies.last
    expect(filtered.get_by_role("note")).to_have_text(
        "The provider's content filter withheld the rest of this reply."
    )
    expect(page.locator("#announcer")).to_have_text(
        "DeepSeek Chat replied (cut short by the content filter): Here is the first half"
    )
    # Asking the provider to go on would be filtered again: Regenerate is the way on.
    expect(filtered.get_by_role("button", name="Continue", exact=True)).to_have_count(0)
    expect(filtered.get_by_role("button", name="Regenerate", exact=True)).to_be_visible()

    send(page, "More [[sim: finish=length say=Cut here]]")
    wait_until_idle(page)
    expect(replies.last.get_by_role("note")).to_have_text(
        "The reply was cut off at the token limit."
    )

    # Read again from the server, the reply still says it.
    page.reload()
    session.wait_connected()
    expect(replies.first.get_by_role("note")).to_have_text(
        "The provider's content filter withheld the rest of this reply."
    )
