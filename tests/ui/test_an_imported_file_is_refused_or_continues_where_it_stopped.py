"""Import JSON in the browser: a file that is not an export of ours is refused with the server's
reason, and the same file, once fixed, can be picked again (the file input kept it, so picking
it again changed nothing and the page did nothing); an imported reply cut off at its token limit
says so and can be continued, as the exported one could (it was imported as complete)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import expect

from conversations.models import Conversation, Message, ModelConfig, User
from tests.ui.conftest import Session, wait_until_idle

CUT = "One, two, three,"


def test_a_refused_file_can_be_fixed_and_picked_again_and_its_cut_reply_continued(
    session: Session, ui_user: User, ui_chat_model: ModelConfig, tmp_path: Path
) -> None:
    page = session.page
    page.goto(f"{session.server.url}/")
    messages = [
        {"role": "user", "content": "Count to ten."},
        {"role": "assistant", "content": CUT, "finish_reason": "length"},
    ]
    file = tmp_path / "chat.json"
    file.write_text(json.dumps(messages), encoding="utf-8")  # another product's bare list
    picker = page.locator("#import-file")
    picker.set_input_files(file)
    expect(page.locator(".toast").last).to_contain_text("The file holds a list")
    assert not Conversation.objects.filter(owner=ui_user).exists()
    # Picked again, the same file is a change for the page.
    assert picker.evaluate("input => input.files.length") == 0

    file.write_text(
        json.dumps({"title": "Counting", "model": ui_chat_model.name, "messages": messages}),
        encoding="utf-8",
    )
    picker.set_input_files(file)
    page.wait_for_url(re.compile(r"/c/[0-9a-f-]+/$"))
    session.wait_connected()
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(reply).to_contain_text("The reply was cut off at the token limit.")
    reply.get_by_role("button", name="Continue", exact=True).click()
    expect(reply).not_to_contain_text("cut off at the token limit", timeout=20000)
    wait_until_idle(page)
    row = Message.objects.get(conversation__owner=ui_user, role="assistant")
    assert row.content.startswith(CUT) and len(row.content) > len(CUT)
    expect(reply.locator(".message-content")).to_contain_text(row.content[len(CUT) :].strip()[:20])
