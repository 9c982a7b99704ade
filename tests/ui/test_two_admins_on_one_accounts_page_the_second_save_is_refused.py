"""Two admins, each signed in in a browser of their own, open the same account's page. Root
suspends the user; Ann, whose page was opened before, raises the user's tokens per day and
saves. Django's admin saved Ann's page as she had read it, unsuspending the user without a
word. Her save is refused, saying that root changed the limits (suspended) and when; what she
typed is still on the page, and its link opens the account as it is now in a new tab."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conversations.models import ModelConfig, UserLimits
from tests.support import make_user
from tests.ui.conftest import LiveServer, new_session


def test_the_second_admins_save_is_refused_saying_who_and_keeps_what_she_typed(
    browser: Browser, chat_server: LiveServer, ui_chat_model: ModelConfig
) -> None:
    make_user("root", is_staff=True, is_superuser=True)
    make_user("ann", is_staff=True, is_superuser=True)
    carol = make_user("carol")
    UserLimits.objects.create(user=carol, tokens_per_day=5000)
    root = new_session(browser, chat_server, username="root").page
    ann = new_session(browser, chat_server, username="ann").page
    url = f"{chat_server.url}/admin/conversations/user/{carol.pk}/change/"
    try:
        root.goto(url)
        ann.goto(url)  # before root saves

        root.get_by_role("checkbox", name="Suspended").check()
        root.get_by_role("button", name="Save and continue editing").click()
        expect(root.locator(".messagelist .success")).to_be_visible()

        ann.locator("#id_limits-0-tokens_per_day_1").fill("6000")
        ann.get_by_role("button", name="Save and continue editing").click()
        refusal = ann.locator(".errorlist.nonfield")
        expect(refusal).to_contain_text(
            "This user was changed after this page was opened: root at "
        )
        expect(refusal).to_contain_text("(limits: suspended). Nothing was saved")
        expect(ann.locator("#id_limits-0-tokens_per_day_1")).to_have_value("6000")
        expect(ann.get_by_role("checkbox", name="Suspended")).not_to_be_checked()
        limits = UserLimits.objects.get(user=carol)
        assert (limits.suspended, limits.tokens_per_day) == (True, 5000)

        with ann.context.expect_page() as opened:
            refusal.get_by_role("link", name="open this user as it is now").click()
        now = opened.value
        expect(now.get_by_role("checkbox", name="Suspended")).to_be_checked()
        now.locator("#id_limits-0-tokens_per_day_1").fill("6000")
        now.get_by_role("button", name="Save and continue editing").click()
        expect(now.locator(".messagelist .success")).to_be_visible()
        limits.refresh_from_db()
        assert (limits.suspended, limits.tokens_per_day) == (True, 6000)
    finally:
        root.context.close()
        ann.context.close()
