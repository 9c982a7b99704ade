"""When the server refuses the conversation's socket for good — signed out, the conversation
deleted — the page says why and stops reconnecting, and a message typed then stays in the
composer."""

from __future__ import annotations

from django.contrib.sessions.models import Session as StoredSession
from playwright.sync_api import expect

from conversations.models import Conversation
from tests.ui.conftest import Session

SIGNED_OUT = "Signed out — sign in again to continue."
DELETED = "This conversation was deleted or does not exist."


def test_a_signed_out_page_says_so_and_keeps_the_message(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    attempts: list[str] = []
    # The conversation's sockets (the welcome page, where signing in lands, has the account's).
    page.on(
        "websocket",
        lambda socket: attempts.append(socket.url) if "/ws/conversations/" in socket.url else None,
    )
    session.open(ui_conversation)
    StoredSession.objects.all().delete()  # signed out (elsewhere, or the session expired)
    page.evaluate("window.chatSocket.drop()")

    status = page.locator("#connection-status")
    expect(status).to_have_text(SIGNED_OUT)
    page.wait_for_timeout(3000)  # a retry would have come by now
    expect(status).to_have_text(SIGNED_OUT)
    assert len(attempts) == 2, attempts  # the first connection and the one refused reconnect
    composer = page.get_by_role("textbox", name="Message", exact=True)
    composer.fill("Are you still there?")
    composer.press("Enter")
    expect(page.locator("#composer-error")).to_have_text(SIGNED_OUT)
    expect(composer).to_have_value("Are you still there?")


def test_deleting_the_open_conversation_says_it_was_deleted_and_undo_brings_it_back(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    sidebar = page.get_by_role("complementary", name="Conversations")
    sidebar.get_by_role("button", name="Delete Deploy notes").click()

    status = page.locator("#connection-status")
    expect(status).to_have_text(DELETED)
    expect(page.locator("#composer-error")).to_have_text("This conversation was deleted.")
    page.wait_for_timeout(2000)
    expect(status).to_have_text(DELETED)

    page.get_by_role("button", name="Undo").click()
    session.wait_connected()
    assert Conversation.objects.get(pk=ui_conversation.pk).deleted_at is None


def test_a_message_still_waiting_to_be_sent_comes_back_when_the_socket_is_refused(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    # The TCP connection is dead but the browser does not know yet: the write goes nowhere.
    page.evaluate("() => { window.chatSocket.socket.send = () => {}; }")
    composer = page.get_by_role("textbox", name="Message", exact=True)
    composer.fill("Did this arrive?")
    composer.press("Enter")
    expect(page.get_by_role("article", name="You")).to_contain_text("Sending…")

    StoredSession.objects.all().delete()  # and meanwhile the session ended
    page.evaluate("window.chatSocket.drop()")
    expect(page.locator("#connection-status")).to_have_text(SIGNED_OUT)
    expect(composer).to_have_value("Did this arrive?")  # not lost, not stuck as "Sending…"
    expect(page.locator("#composer-error")).to_have_text(SIGNED_OUT)
    expect(page.get_by_role("article", name="You")).to_have_count(0)
    page.evaluate("window.dispatchEvent(new Event('offline'))")
    page.evaluate("window.dispatchEvent(new Event('online'))")
    expect(page.locator("#connection-status")).to_have_text(SIGNED_OUT)  # the reason stays
