"""Two admins add limits to an account that had none, each from a page opened before the
other's save. The second save was refused with "Please correct the error below." and no error
anywhere below (it was on the inline's hidden link to the account: its limits existed now),
every save again the same. It says why, on the Limits section, and the first's stay."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conversations.models import ModelConfig, Policy, UserLimits
from tests.support import make_user
from tests.ui.conftest import LiveServer, new_session


def test_the_second_limits_added_meanwhile_are_refused_saying_why(
    browser: Browser, chat_server: LiveServer, ui_chat_model: ModelConfig
) -> None:
    make_user("root", is_staff=True, is_superuser=True)
    Policy.objects.all().delete()
    Policy.objects.create(name="Default", is_default=True)
    carol = make_user("carol")
    first = new_session(browser, chat_server, username="root").page
    second = first.context.new_page()
    url = f"{chat_server.url}/admin/conversations/user/{carol.pk}/change/"
    try:
        for page, limit in ((first, "5000"), (second, "6000")):
            page.goto(url)
            page.get_by_role("button", name="Set this user's own limits, or suspend them").click()
            page.locator("input[name='limits-0-tokens_per_day']").fill(limit)
        first.get_by_role("button", name="Save and continue editing").click()
        expect(first.locator(".messagelist .success")).to_be_visible()

        second.get_by_role("button", name="Save and continue editing").click()
        expect(second.locator("#limits-group .errorlist")).to_have_text(
            "This user's own limits were set by someone else after this page was opened: "
            "reload the page to see them, and change them there. What you entered here is "
            "not saved."
        )
        expect(second.locator("#limits-group .errorlist")).to_be_visible()
        assert UserLimits.objects.get(user=carol).override("tokens_per_day") == 5000
    finally:
        first.context.close()
