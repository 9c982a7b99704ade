"""An admin on the usage dashboard chooses a user in the filters and clicks "Export CSV". The
export was a link built from the filters already applied (the page's address): without
"Apply" first, it sent everyone's ledger, under the user's name in the filter. It sends the
ledger under the filters as chosen on the page."""

from __future__ import annotations

import csv

from playwright.sync_api import Browser

from conversations.models import ModelConfig, User
from tests.support import make_user
from tests.test_usage_pages import spend
from tests.ui.conftest import LiveServer, new_session


def test_export_csv_sends_the_ledger_of_the_filters_chosen_not_yet_applied(
    browser: Browser, chat_server: LiveServer, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    make_user("root", is_staff=True, is_superuser=True)
    bob = make_user("bob")
    spend(ui_user, ui_chat_model, hit=0, miss=100, completion=20)
    spend(bob, ui_chat_model, hit=0, miss=200, completion=30)
    admin = new_session(browser, chat_server, username="root")
    try:
        page = admin.page
        page.goto(f"{chat_server.url}/admin/usage/")
        page.get_by_label("User").select_option(label=ui_user.username)
        with page.expect_download() as download:
            page.get_by_text("Export CSV", exact=True).click()  # a link before, a button now
        with open(download.value.path(), newline="") as exported:
            rows = list(csv.DictReader(exported))
        assert [(row["user"], row["total_tokens"]) for row in rows] == [(ui_user.username, "120")]
    finally:
        admin.page.context.close()
