"""Two admins on the same account's page: the first deactivates it and takes it out of the group
whose policy set its limits; the second, whose page was opened before, corrects its e-mail.
Saved as Django saves it, the second page wrote back every field as it had read it: the
account was active again and back in the group (its policy with it), without a word. The
fields the second admin left alone keep the first one's values."""

from __future__ import annotations

from django.contrib.auth.models import Group
from playwright.sync_api import Browser, Page, expect

from conversations.models import ModelConfig, Policy, User
from tests.support import make_user
from tests.ui.conftest import LiveServer, new_session


def _save(page: Page) -> None:
    page.get_by_role("button", name="Save and continue editing").click()


def test_a_save_from_an_older_page_keeps_a_deactivation_and_a_group_left_meanwhile(
    browser: Browser, chat_server: LiveServer, ui_chat_model: ModelConfig
) -> None:
    make_user("root", is_staff=True, is_superuser=True)
    Policy.objects.all().delete()
    Policy.objects.create(name="Default", is_default=True)
    eng = Group.objects.create(name="eng")
    Policy.objects.create(name="Team", tokens_per_day=100_000).groups.add(eng)
    carol = make_user("carol")
    carol.groups.add(eng)
    first = new_session(browser, chat_server, username="root").page
    second = first.context.new_page()
    url = f"{chat_server.url}/admin/conversations/user/{carol.pk}/change/"
    try:
        first.goto(url)
        second.goto(url)  # opened before the first page saves

        first.get_by_label("Active").uncheck()
        first.locator("#id_groups_to").select_option("eng")
        first.locator("#id_groups_remove").click()
        _save(first)
        expect(first.locator(".messagelist .success")).to_be_visible()

        second.get_by_label("Email address").fill("carol@example.com")
        _save(second)
        expect(second.locator(".messagelist .success")).to_be_visible()
        carol = User.objects.get(pk=carol.pk)
        assert carol.email == "carol@example.com"
        assert not carol.is_active
        assert list(carol.groups.all()) == []
        expect(second.get_by_label("Active")).not_to_be_checked()
    finally:
        first.context.close()
