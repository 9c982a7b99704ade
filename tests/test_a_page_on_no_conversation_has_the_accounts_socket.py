"""The welcome page (no conversation open) has a socket of its own, the account's
(``/ws/account/``): it hears what the account's lists of conversations show — one made in
another tab is listed once its first message is sent — and nothing else. It is only for a signed-in account, answers a ping
and refuses any other frame, and leaves once its session ends. The page had no socket, so its
list stayed as it was loaded."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, ModelConfig, User
from tests.support import client_for, closed_code, open_account_socket, open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def test_it_lists_a_conversation_made_in_another_tab(
    alice: User, chat_model: ModelConfig, generation_service: Any
) -> None:
    welcome = await open_account_socket(alice)
    client = await sync_to_async(client_for)(alice)
    created = await sync_to_async(client.post)(
        "/c/new/", {"model": chat_model.name}, content_type="application/json"
    )
    assert created.status_code == 201
    # Listed once its first message is admitted (empty, it is not listed).
    conversation = await Conversation.objects.aget(pk=created.json()["id"])
    tab = await open_socket(alice, conversation, client=client)
    await tab.send({"type": "message.send", "client_id": "c1", "content": "Hi [[sim: say=Hey]]"})
    listed = await welcome.until_type("conversation.listed")
    assert listed["conversation"] == {"id": created.json()["id"], "title": "New chat"}
    await tab.until_reply_ends()
    await tab.close()
    await welcome.close()


async def test_it_answers_a_ping_and_refuses_any_other_frame(
    alice: User, generation_service: Any
) -> None:
    welcome = await open_account_socket(alice)
    await welcome.send({"type": "ping"})
    assert await welcome.receive() == {"type": "pong"}
    await welcome.send({"type": "message.send", "client_id": "c1", "content": "Hi"})
    refused = await welcome.receive()
    assert (refused["type"], refused["code"], refused["request_type"]) == (
        "error",
        "invalid_parameter",
        "message.send",
    )
    assert refused["message"] == 'This socket takes only a ping ({"type": "ping"}).'
    await welcome.send_raw("not json")
    not_json = await welcome.receive()
    assert not_json["code"] == "invalid_parameter"
    # Each refusal says what is wrong (all were "This socket takes only a ping.").
    assert not_json["message"] == (
        'The frame is not a JSON object: this socket takes only {"type": "ping"}.'
    )
    await welcome.send({"type": "ping", "extra": 1})
    extra = await welcome.receive()
    assert (extra["message"], extra["param"]) == ("A ping has no other field: extra.", "extra")
    await welcome.close()


async def test_a_visitor_not_signed_in_is_refused(generation_service: Any) -> None:
    visitor = await open_account_socket(None)
    assert await closed_code(visitor) == 4401


async def test_it_leaves_when_its_session_signs_out(alice: User, generation_service: Any) -> None:
    laptop = await sync_to_async(client_for)(alice)
    welcome = await open_account_socket(alice, laptop)
    response = await sync_to_async(laptop.post)("/accounts/logout/")
    assert response.status_code == 302
    told = await welcome.until_type("error")
    assert told["code"] == "access_revoked"
    assert await closed_code(welcome) == 4401


async def test_it_leaves_when_the_account_is_deactivated(
    alice: User, staff: User, generation_service: Any
) -> None:
    welcome = await open_account_socket(alice)
    admin = await sync_to_async(client_for)(staff)

    def deactivate() -> None:
        from tests.support import admin_form

        page = f"/admin/conversations/user/{alice.pk}/change/"
        response = admin.post(page, admin_form(admin, page, is_active=None))
        assert response.status_code == 302, response.content.decode()[:2000]

    await sync_to_async(deactivate)()
    assert (await welcome.until_type("error"))["code"] == "access_revoked"
    assert await closed_code(welcome) == 4401
