"""Import JSON in the browser: a file over the size limit was sent anyway, and behind the compose
proxy nginx answered it with its own HTML 413, which the page could not read: it said only
"Could not import.". The page now checks the file's size before sending (the limit is given to
it by the template) and says the file is too large and what the limit is; a 413 of any shape
(here a real nginx with a tighter limit than the app's, as an operator may set) says the same."""

from __future__ import annotations

import json
import re
from pathlib import Path

from django.conf import settings
from playwright.sync_api import expect

from conversations.models import Conversation, ModelConfig, User
from tests.servers import nginx_proxy
from tests.ui.conftest import Session

LIMIT_MB = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1_000_000
TOO_LARGE = f"The file is too large to import (at most {LIMIT_MB} MB)."


def _export(model: ModelConfig, padding: int) -> str:
    message = {"role": "user", "content": "x" * padding}
    return json.dumps({"title": "Big", "model": model.name, "messages": [message]})


def test_a_file_over_the_limit_is_refused_before_sending_naming_the_limit(
    session: Session, ui_user: User, ui_chat_model: ModelConfig, tmp_path: Path
) -> None:
    page = session.page
    page.goto(f"{session.server.url}/")
    sent: list[str] = []
    page.on(
        "request", lambda request: sent.append(request.url) if "/c/import/" in request.url else None
    )
    file = tmp_path / "big.json"
    file.write_text(_export(ui_chat_model, settings.DATA_UPLOAD_MAX_MEMORY_SIZE), encoding="utf-8")
    page.locator("#import-file").set_input_files(file)
    expect(page.locator(".toast").last).to_have_text(TOO_LARGE)
    assert sent == []
    assert not Conversation.objects.filter(owner=ui_user).exists()


def test_a_proxy_s_own_413_page_says_the_file_is_too_large(
    session: Session, ui_user: User, ui_chat_model: ModelConfig, tmp_path: Path
) -> None:
    with nginx_proxy(session.server.url, tmp_path, site_body_limit="100k") as base:
        # Signed in on the worker's origin: the cookie is the host's, whatever the port.
        page = session.page
        page.goto(f"{base}/")
        file = tmp_path / "medium.json"
        file.write_text(_export(ui_chat_model, 200_000), encoding="utf-8")
        with page.expect_response(lambda r: "/c/import/" in r.url) as answer:
            page.locator("#import-file").set_input_files(file)
        assert answer.value.status == 413
        assert "text/html" in answer.value.headers.get("content-type", "")
        expect(page.locator(".toast").last).to_have_text(TOO_LARGE)
    assert not Conversation.objects.filter(owner=ui_user).exists()


def test_a_file_under_the_limit_once_compacted_is_imported(
    session: Session, ui_user: User, ui_chat_model: ModelConfig, tmp_path: Path
) -> None:
    """What is sent is the file compacted: an export's indentation does not count."""
    page = session.page
    page.goto(f"{session.server.url}/")
    file = tmp_path / "indented.json"
    body = json.dumps(
        {
            "title": "Indented",
            "model": ui_chat_model.name,
            "messages": [{"role": "user", "content": "x" * 100_000}],
        },
        indent=2,
    )
    # Whitespace past the limit (as a deeply indented export has), the JSON itself far under it.
    file.write_text(body + " " * settings.DATA_UPLOAD_MAX_MEMORY_SIZE, encoding="utf-8")
    assert file.stat().st_size > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    page.locator("#import-file").set_input_files(file)
    expect(page).to_have_url(re.compile(r"/c/[0-9a-f-]{36}/$"))
    assert Conversation.objects.filter(owner=ui_user, title="Indented").exists()
