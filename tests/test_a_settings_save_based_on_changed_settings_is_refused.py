"""A settings save replaces all the settings: one made in a tab that had not seen a change
saved in another silently wiped it. A save says what it was based on (``based_on``, their
``settings_version``) and is refused (409) when they changed since, carrying them as they are
now; a saved change is announced to the conversation's open sockets (never a link's)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async

from conversations import sharing
from conversations.models import Conversation, ModelConfig, User
from conversations.ui_actions import SETTINGS_CHANGED, settings_of, settings_version
from simulator.testing import running_simulator
from tests.servers import WorkerSocket, daphne_worker, redis_url, session_cookie
from tests.support import SIM_KEY, admin_form, client_for, open_socket


def save(user: User, conversation: Conversation, body: dict[str, Any]) -> Any:
    return client_for(user).post(
        f"/c/{conversation.id}/settings/", data=json.dumps(body), content_type="application/json"
    )


@pytest.mark.django_db
def test_a_save_based_on_settings_changed_since_is_refused_and_loses_nothing(
    alice: User, alice_conversation: Conversation, reasoner_model: ModelConfig
) -> None:
    loaded = settings_version(alice_conversation)  # both tabs opened on these
    first = save(
        alice,
        alice_conversation,
        {
            "based_on": loaded,
            "model": "deepseek-reasoner",
            "system_prompt": "You are a pirate.",
            "params": {},
        },
    )
    assert first.status_code == 200, first.content
    assert first.json()["settings_version"] != loaded

    second = save(
        alice,
        alice_conversation,
        {
            "based_on": loaded,
            "model": "deepseek-chat",
            "system_prompt": "",
            "params": {"temperature": 0.3},
        },
    )
    assert second.status_code == 409, second.content
    body = second.json()
    assert body["errors"] == {"__all__": SETTINGS_CHANGED}
    assert body["error"]["code"] == "conflict"
    assert body["error"]["settings"] == first.json()
    alice_conversation.refresh_from_db()
    assert alice_conversation.model == reasoner_model
    assert alice_conversation.system_prompt == "You are a pirate."
    assert alice_conversation.params == {}

    # Made again over the settings as they are now, it is saved.
    third = save(
        alice,
        alice_conversation,
        {
            "based_on": body["error"]["settings"]["settings_version"],
            "model": "deepseek-reasoner",
            "system_prompt": "You are a pirate.",
            "params": {"temperature": 0.3},
        },
    )
    assert third.status_code == 200, third.content
    alice_conversation.refresh_from_db()
    assert alice_conversation.params == {"temperature": 0.3}
    # The page reads the version its next save is based on.
    page = client_for(alice).get(f"/c/{alice_conversation.id}/").content.decode()
    assert f'"settings_version": "{third.json()["settings_version"]}"' in page


@pytest.mark.django_db
def test_a_save_that_says_nothing_of_what_it_was_based_on_is_refused(
    alice: User, alice_conversation: Conversation
) -> None:
    response = save(
        alice,
        alice_conversation,
        {"model": "deepseek-chat", "system_prompt": "", "params": {"temperature": 0.3}},
    )
    assert response.status_code == 400, response.content
    assert set(response.json()["errors"]) == {"based_on"}
    alice_conversation.refresh_from_db()
    assert alice_conversation.params == {}


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_a_saved_change_reaches_the_open_sockets_but_not_a_links(
    alice: User, charlie: User, alice_conversation: Conversation, reasoner_model: ModelConfig
) -> None:
    _, token = await sync_to_async(sharing.create_share_link)(alice, alice_conversation.id)
    viewer = await open_socket(charlie, alice_conversation, link=token)
    other_tab = await open_socket(alice, alice_conversation)
    loaded = await sync_to_async(settings_version)(alice_conversation)
    response = await sync_to_async(save)(
        alice,
        alice_conversation,
        {
            "based_on": loaded,
            "model": "deepseek-reasoner",
            "system_prompt": "You are a pirate.",
            "params": {"temperature": 0.3},
        },
    )
    assert response.status_code == 200, response.content

    frame = await other_tab.until_type("conversation.settings")
    assert frame == {"type": "conversation.settings", **response.json()}
    assert frame["model_display_name"] == reasoner_model.display_name

    # A rename, announced after the settings, reaches the link's socket; the settings never do.
    await sync_to_async(sharing.announce_title)(alice_conversation.id, "Renamed")
    await viewer.until_type("conversation.updated")
    assert viewer.of_type("conversation.settings") == []
    await viewer.close()
    await other_tab.close()


@pytest.fixture
def workers(chat_model: ModelConfig) -> Iterator[tuple[str, str]]:
    with running_simulator(api_key=SIM_KEY) as upstream:
        env = {"REDIS_URL": redis_url()}
        with (
            daphne_worker(upstream, SIM_KEY, **env) as a,
            daphne_worker(upstream, SIM_KEY, **env) as b,
        ):
            yield a, b


def save_on(worker: str, cookie: str, conversation: Conversation, body: dict[str, Any]) -> Any:
    """The save the page makes, served by ``worker``."""
    with httpx.Client(base_url=worker, cookies={"sessionid": cookie}) as browser:
        page = browser.get(f"/c/{conversation.id}/")
        assert page.status_code == 200
        token = (
            browser.cookies.get("csrftoken")
            or re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
        )  # type: ignore[index]
        return browser.post(
            f"/c/{conversation.id}/settings/",
            json=body,
            headers={"X-CSRFToken": token, "Referer": worker + "/"},
        )


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
async def test_a_change_saved_on_one_worker_reaches_a_tab_on_the_other(
    alice: User, alice_conversation: Conversation, workers: tuple[str, str]
) -> None:
    worker_a, worker_b = workers
    cookie = await sync_to_async(session_cookie)(alice)
    other_tab = await WorkerSocket.open(worker_b, alice_conversation.id, cookie)
    loaded = await sync_to_async(settings_version)(alice_conversation)
    body = {
        "based_on": loaded,
        "model": "deepseek-chat",
        "system_prompt": "You are a pirate.",
        "params": {},
    }
    response = await sync_to_async(save_on)(worker_a, cookie, alice_conversation, body)
    assert response.status_code == 200, response.text
    frame = await other_tab.until("conversation.settings")
    assert frame == {"type": "conversation.settings", **response.json()}

    # The same save again, from a tab that had not seen it: refused on the other worker.
    refused = await sync_to_async(save_on)(worker_b, cookie, alice_conversation, body)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["settings"] == response.json()
    await other_tab.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_a_change_saved_in_the_admin_reaches_the_open_sockets(
    alice: User, staff: User, alice_conversation: Conversation, reasoner_model: ModelConfig
) -> None:
    """Changed on its admin page, the title and settings reach the conversation's open tabs as
    a rename or a save in the chat do (before, a tab kept the old settings until its next save
    was refused, and the old title until a reload)."""
    tab = await open_socket(alice, alice_conversation)
    page = f"/admin/conversations/conversation/{alice_conversation.pk}/change/"

    def save_in_the_admin(**changes: Any) -> None:
        admin = client_for(staff)
        response = admin.post(page, admin_form(admin, page, **changes))
        assert response.status_code == 302, response.content.decode()[:2000]

    # A change of the title alone leaves the settings as they were: nothing to announce but
    # the title, which the page shows at once (before, it kept the old one until a reload).
    await sync_to_async(save_in_the_admin)(title="Renamed in the admin")
    renamed = await tab.until_type("conversation.updated")
    assert renamed["title"] == "Renamed in the admin"
    assert tab.of_type("conversation.settings") == []

    await sync_to_async(save_in_the_admin)(
        model=str(reasoner_model.pk), system_prompt="You are a pirate."
    )
    frame = await tab.until_type("conversation.settings")
    stored = await Conversation.objects.select_related("model").aget(pk=alice_conversation.pk)
    assert frame == {"type": "conversation.settings", **settings_of(stored)}
    assert frame["model"] == "deepseek-reasoner"
    assert frame["system_prompt"] == "You are a pirate."
    await tab.close()
