"""The small JSON endpoints behind the page: owners only, errors that name their field."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest
from django.urls import reverse

from conversations.models import Conversation, Message, User
from conversations.ui_actions import settings_version
from tests.support import client_for

pytestmark = pytest.mark.django_db


def post_json(user: User, url: str, body: object) -> tuple[int, dict[str, object]]:
    response = client_for(user).post(url, json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


def test_a_stranger_cannot_rename_delete_restore_configure_or_export(
    charlie: User, alice_conversation: Conversation
) -> None:
    cid = alice_conversation.id
    for name, body in [
        ("conversation-rename", {"title": "mine now"}),
        ("conversation-delete", {}),
        ("conversation-restore", {}),
        ("conversation-settings", {"model": "deepseek-chat", "params": {}}),
    ]:
        response = client_for(charlie).post(
            reverse(name, args=[cid]), json.dumps(body), content_type="application/json"
        )
        assert response.status_code == 404, name
    export = client_for(charlie).get(reverse("conversation-export", args=[cid, "json"]))
    assert export.status_code == 404
    alice_conversation.refresh_from_db()
    assert alice_conversation.title == "Deploy notes" and alice_conversation.deleted_at is None


def test_delete_then_restore_brings_the_conversation_back(
    alice: User, alice_conversation: Conversation
) -> None:
    cid = alice_conversation.id
    assert post_json(alice, reverse("conversation-delete", args=[cid]), {})[0] == 200
    assert client_for(alice).get(reverse("conversation-detail", args=[cid])).status_code == 404
    assert post_json(alice, reverse("conversation-restore", args=[cid]), {})[0] == 200
    assert client_for(alice).get(reverse("conversation-detail", args=[cid])).status_code == 200


def test_settings_errors_name_the_field(alice: User, alice_conversation: Conversation) -> None:
    url = reverse("conversation-settings", args=[alice_conversation.id])
    based_on = settings_version(alice_conversation)  # each save below but the last is refused
    status, body = post_json(
        alice, url, {"based_on": based_on, "model": "deepseek-chat", "params": {"top_p": 0}}
    )
    assert status == 400
    assert body["errors"] == {"top_p": "top_p must be in (0, 1]."}
    status, body = post_json(alice, url, {"based_on": based_on, "model": "nope", "params": {}})
    assert status == 403 and "model" in body["errors"]  # type: ignore[operator]
    status, body = post_json(
        alice,
        url,
        {
            "based_on": based_on,
            "model": "deepseek-reasoner",
            "system_prompt": "Hi",
            "params": {"logprobs": True},
        },
    )
    assert status == 400 and "logprobs" in body["errors"]  # type: ignore[operator]
    status, body = post_json(
        alice,
        url,
        {
            "based_on": based_on,
            "model": "deepseek-reasoner",
            "system_prompt": "Hi",
            "params": {"stop": "END"},
        },
    )
    assert status == 200 and body["params"] == {"stop": ["END"]}
    alice_conversation.refresh_from_db()
    assert alice_conversation.model.name == "deepseek-reasoner"


def test_new_chat_and_import_create_conversations(alice: User, chat_model: object) -> None:
    status, body = post_json(alice, reverse("conversation-create"), {"model": "deepseek-chat"})
    assert status == 201
    assert Conversation.objects.get(pk=body["id"]).owner == alice

    exported = {
        "title": "Imported",
        "model": "deepseek-chat",
        "messages": [
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": "Hi"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
            {"role": "assistant", "content": "It is 42.", "reasoning_content": "Easy."},
        ],
    }
    status, body = post_json(alice, reverse("conversation-import"), exported)
    assert status == 201
    imported = Conversation.objects.get(pk=body["id"])
    assert imported.system_prompt == "Be kind." and imported.title == "Imported"
    chain = list(Message.objects.filter(conversation=imported).order_by("created_at"))
    assert [m.role for m in chain] == ["user", "assistant", "tool", "assistant"]
    assert all(b.parent_id == a.id for a, b in pairwise(chain))
    round_trip = client_for(alice).get(reverse("conversation-export", args=[imported.id, "json"]))
    assert round_trip.json()["messages"] == exported["messages"]

    status, body = post_json(alice, reverse("conversation-import"), {"messages": [{"role": "x"}]})
    assert status == 400 and body["error"]["param"] == "messages"  # type: ignore[index]


def test_an_unknown_export_format_is_a_404(alice: User, alice_conversation: Conversation) -> None:
    url = reverse("conversation-export", args=[alice_conversation.id, "exe"])
    assert client_for(alice).get(url).status_code == 404


def test_an_import_with_too_long_a_system_prompt_says_it_is_too_long(
    alice: User, chat_model: object
) -> None:
    status, body = post_json(
        alice,
        reverse("conversation-import"),
        {"system_prompt": "x" * 100_001, "messages": [{"role": "user", "content": "Hi"}]},
    )
    assert status == 400
    assert body["error"]["param"] == "system_prompt"  # type: ignore[index]
    assert "longer than 100000 characters" in body["error"]["message"]  # type: ignore[index]
    assert not Conversation.objects.filter(owner=alice).exists()
