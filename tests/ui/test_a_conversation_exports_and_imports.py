from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import expect

from conversations.models import Conversation, Message, User
from tests.ui.conftest import Session, send, wait_until_idle


def test_a_conversation_exports_as_markdown_and_json_and_the_json_imports(
    session: Session, ui_user: User, ui_conversation: Conversation
) -> None:
    ui_conversation.system_prompt = "Be brief."
    ui_conversation.save()
    page = session.page
    session.open(ui_conversation)
    send(page, "Ship it? [[sim: say=Yes, **ship** it.]]")
    wait_until_idle(page)

    page.get_by_text("Export").click()
    with page.expect_download() as markdown_download:
        page.get_by_role("link", name="Markdown").click()
    markdown = Path(markdown_download.value.path()).read_text(encoding="utf-8")
    assert "# Deploy notes" in markdown and "Yes, **ship** it." in markdown

    page.get_by_text("Export").click()
    with page.expect_download() as json_download:
        page.get_by_role("link", name="JSON").click()
    exported = json.loads(Path(json_download.value.path()).read_text(encoding="utf-8"))
    assert exported["title"] == "Deploy notes"
    assert exported["model"] == "deepseek-chat"
    assert exported["system_prompt"] == "Be brief."
    assert [m["role"] for m in exported["messages"]] == ["system", "user", "assistant"]
    assert exported["messages"][2]["content"] == "Yes, **ship** it."

    page.locator("#import-file").set_input_files(json_download.value.path())
    page.wait_for_url(lambda url: str(ui_conversation.id) not in url and "/c/" in url)
    session.wait_connected()
    imported = Conversation.objects.exclude(pk=ui_conversation.pk).get(owner=ui_user)
    assert imported.system_prompt == "Be brief."
    assert list(Message.objects.filter(conversation=imported).values_list("role", flat=True)) == [
        "user",
        "assistant",
    ]
    expect(page.get_by_role("article", name="DeepSeek Chat")).to_contain_text("Yes, ship it.")
