"""Text PostgreSQL cannot store (U+0000) or UTF-8 cannot encode (an unpaired surrogate) is
refused where it enters, with an error naming the field, on every path; the model's own NUL
characters are dropped rather than losing the reply; and other odd inputs get clear errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.test import Client

from conversations.models import ApiKey, Conversation, Message, ModelConfig, UsageRecord, User
from tests.support import client_for, eventually, open_socket
from tests.test_api_support import all_settled, api_server, assert_envelope, bearer, chat, make_key

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("raw", "param", "words"),
    [
        (
            '{"type": "message.send", "client_id": "x", "content": "a\\u0000b"}',
            "content",
            "NUL",
        ),
        (
            '{"type": "message.send", "client_id": "x", "content": "a\\ud800b"}',
            "content",
            "surrogate",
        ),
        (
            '{"type": "message.send", "client_id": "x", "content": "hi", '
            '"params": {"stop": ["\\u0000"]}}',
            "params",
            "NUL",
        ),
        (
            '{"type": "message.send", "client_id": "x", "content": "hi", '
            '"params": {"temperature": 1' + "0" * 400 + "}}",
            "temperature",
            "temperature",
        ),
        (
            '{"type": "message.send", "client_id": "x", "content": "hi", '
            '"params": {"temperature": 1e400}}',
            "temperature",
            "finite",
        ),
    ],
)
async def test_a_frame_with_such_text_is_refused_and_the_socket_keeps_working(
    alice: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
    raw: str,
    param: str,
    words: str,
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send_raw(raw)
    error = await socket.until_type("error")
    assert error["param"] == param and words in error["message"], error
    await socket.send({"type": "message.send", "client_id": "ok", "content": "[[sim: say=Fine.]]"})
    assert (await socket.until_reply_ends())["type"] == "reply.completed"
    await socket.close()


@pytest.mark.timeout(60)
async def test_a_reply_holding_nul_characters_is_stored_without_them(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {"type": "message.send", "client_id": "nul", "content": "[[sim: say=be\\0fore\\0 after]]"}
    )
    end = await socket.until_reply_ends()
    assert end["type"] == "reply.completed", end
    await socket.close()
    reply = await Message.objects.aget(conversation=alice_conversation, role="assistant")
    assert reply.status == "complete" and reply.content == "before after"


def test_json_bodies_and_forms_name_the_field_at_fault(
    alice: User, alice_conversation: Conversation
) -> None:
    client = client_for(alice)
    conversation = alice_conversation
    response = client.post(
        f"/c/{conversation.id}/rename/",
        data='{"title": "Bad\\u0000title"}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "title"
    assert "NUL" in response.json()["error"]["message"]
    utf16 = client.post(
        f"/c/{conversation.id}/rename/",
        data='{"title": "Bad\\u0000title"}'.encode("utf-16"),
        content_type="application/json",
    )
    assert utf16.status_code == 400 and utf16.json()["error"]["param"] == "body"
    conversation.refresh_from_db()
    assert conversation.title == "Deploy notes"

    page = client.post("/settings/api-keys/", {"name": "ci\x00key"})
    assert page.status_code == 400 and "'name'" in page.content.decode()
    assert not ApiKey.objects.filter(user=alice).exists()
    search = client.get("/search/", {"q": "a\x00b"}, HTTP_ACCEPT="application/json")
    assert search.status_code == 400 and search.json()["error"]["param"] == "q"


def test_an_expiry_past_the_last_date_is_a_form_error(alice: User) -> None:
    page = client_for(alice).post("/settings/api-keys/", {"name": "ci", "expires_at": "9999-12-31"})
    assert page.status_code == 400 and "before 9999-12-31" in page.content.decode()
    assert not ApiKey.objects.filter(user=alice).exists()


def test_an_export_over_django_s_default_body_limit_imports(alice: User, chat_model: Any) -> None:
    long_reply = "word " * 16_000  # 80,000 characters, the most a message holds is 100,000
    turns = [
        {"role": "user", "content": "Go on."}
        if i % 2 == 0
        else {"role": "assistant", "content": long_reply}
        for i in range(76)
    ]  # 3 MB: over Django's default 2.5 MB, under our 5 MB
    export = {"title": "Long one", "messages": turns}
    client = client_for(alice)
    response = client.post("/c/import/", data=json.dumps(export), content_type="application/json")
    assert response.status_code == 201, response.content[:200]
    imported = Conversation.objects.get(pk=response.json()["id"])
    replies = imported.messages.filter(role="assistant")
    assert replies.count() == 38 and all(r.content == long_reply for r in replies)

    too_big = json.dumps({**export, "messages": turns * 2})
    refused = client.post("/c/import/", data=too_big, content_type="application/json")
    assert refused.status_code == 400
    assert refused.json()["error"]["message"].startswith("The request is too large")


def test_anonymous_form_posts_are_checked_too() -> None:
    response = Client().post("/accounts/login/", {"username": "a\x00", "password": "x"})
    assert response.status_code == 400


# --- the API ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_base(django_db_setup: None) -> Iterator[str]:
    with api_server() as url:
        yield url


@pytest.mark.timeout(120)
def test_the_api_refuses_what_it_could_not_send_and_names_the_parameter(
    api_base: str, alice: User, chat_model: ModelConfig
) -> None:
    headers = bearer(make_key(alice))
    # The escape spelled out: a client library cannot encode the lone surrogate itself.
    raw = b'{"model": "deepseek-chat", "messages": [{"role": "user", "content": "a\\ud800b"}]}'
    response = httpx.post(
        api_base + "/v1/chat/completions",
        headers={**headers, "Content-Type": "application/json"},
        content=raw,
    )
    error = assert_envelope(response, 400, "invalid_request_error")
    assert error["param"] == "messages" and "surrogate" in error["message"], error
    # JSON in UTF-16 would slip past the scan for escapes: only UTF-8 is JSON here.
    utf16 = '{"model": "deepseek-chat", "messages": [{"role": "user", "content": "a\\u0000"}]}'
    response = httpx.post(
        api_base + "/v1/chat/completions",
        headers={**headers, "Content-Type": "application/json"},
        content=utf16.encode("utf-16"),
    )
    assert "not valid UTF-8" in assert_envelope(response, 400, "invalid_request_error")["message"]
    for body, param in [
        ({"temperature": 10**400}, "temperature"),
        ({"reasoning_effort": ["high"]}, "reasoning_effort"),
    ]:
        error = assert_envelope(chat(api_base, headers, body), 400, "invalid_request_error")
        assert error["param"] == param, (body, error)
    assert not UsageRecord.objects.filter(user=alice).exists()


@pytest.mark.timeout(120)
def test_a_saving_key_is_charged_even_when_its_copy_cannot_be_kept(
    api_base: str, alice: User, chat_model: ModelConfig
) -> None:
    headers = bearer(make_key(alice, save_history=True))
    # NUL reaches the upstream as sent; the saved copy drops it.
    for stream in (False, True):
        response = chat(
            api_base,
            headers,
            {"messages": [{"role": "user", "content": "nul\x00here [[sim: say=Fine.]]"}]},
            stream=stream,
        )
        assert response.status_code == 200, response.text
    all_settled(user=alice)  # each call is saved as it is settled, after its answer

    def both_saved() -> list[Conversation]:
        saved = list(Conversation.objects.filter(owner=alice))
        assert len(saved) == 2
        return saved

    for conversation in eventually(both_saved):
        assert conversation.messages.get(role="user").content == "nulhere [[sim: say=Fine.]]"

    # A tool call id longer than the column: no copy, but the call is charged all the same.
    call_id = "call_" + "x" * 150
    messages = [
        {"role": "user", "content": "Weather? [[sim: say=Sunny.]]"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": "w", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "18C"},
    ]
    for stream in (False, True):
        response = chat(api_base, headers, {"messages": messages}, stream=stream)
        assert response.status_code == 200, response.text
    all_settled(user=alice)
    assert Conversation.objects.filter(owner=alice).count() == 2
    records = UsageRecord.objects.filter(user=alice).order_by("id")
    assert [r.state for r in records] == ["settled"] * 4
    assert all(r.completion_tokens > 0 and not r.estimated for r in records)


@pytest.mark.timeout(120)
def test_a_key_holding_a_lone_surrogate_is_named_escaped_not_a_500(
    api_base: str, alice: User, chat_model: ModelConfig
) -> None:
    """The error names where the bad text is by the body's own keys: a key that is itself a
    lone surrogate made the error unwritable in UTF-8, and the client got a 500."""
    raw = (
        b'{"model": "deepseek-chat", "messages": [{"role": "user", "content": "Hi"}],'
        b' "stream": true, "stream_options": {"\\ud800": true}}'
    )
    response = httpx.post(
        api_base + "/v1/chat/completions",
        headers={**bearer(make_key(alice)), "Content-Type": "application/json"},
        content=raw,
    )
    error = assert_envelope(response, 400, "invalid_request_error")
    assert error["param"] == "stream_options"
    assert "stream_options.\\ud800" in error["message"] and "surrogate" in error["message"]
