"""A message over the server's limit (100,000 characters) is refused with that reason; its
text stays in the composer and the composer stays usable, however long the paste was."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation, Message
from tests.ui.conftest import Session, send

TOO_LONG = "The message is longer than 100000 characters."


def test_a_paste_over_the_limit_is_refused_and_kept(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    composer = page.get_by_role("textbox", name="Message", exact=True)
    pasted = "log line\n" * 25_000  # 225,000 characters: more than one frame may carry
    # As a paste puts it there (typing it would take Playwright minutes).
    composer.evaluate(
        "(field, text) => { field.value = text; field.dispatchEvent(new Event('input')); }",
        pasted,
    )
    composer.press("Enter")
    expect(page.locator("#composer-error")).to_have_text(TOO_LONG)
    assert composer.input_value() == pasted
    expect(page.locator(".messages > article")).to_have_count(0)  # nothing left "Sending…"
    page.wait_for_timeout(500)
    assert not Message.objects.filter(conversation=ui_conversation).exists()

    # Cut down, it goes.
    composer.evaluate("(field) => { field.value = ''; field.dispatchEvent(new Event('input')); }")
    send(page, "Only the last lines [[sim: say=Seen.]]")
    expect(page.locator("#composer-error")).to_have_text("")
    expect(page.locator(".messages > article").last).to_contain_text("Seen.")
