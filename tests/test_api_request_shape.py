"""What a body must look like: known fields only, valid messages, valid JSON, at most 2 MB."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests.test_api_support import assert_envelope, bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def headers(alice: User, chat_model: ModelConfig) -> dict[str, str]:
    return bearer(make_key(alice))


def test_an_unknown_field_is_refused_by_name(base: str, headers: dict[str, str]) -> None:
    for field in ("seed", "logit_bias", "store", "modle"):
        error = assert_envelope(chat(base, headers, {field: 1}), 400, "invalid_request_error")
        assert error["param"] == field and field in error["message"]
    assert not UsageRecord.objects.exists()


BAD_MESSAGES: list[tuple[Any, str]] = [
    (None, "messages is required"),
    ([], "non-empty"),
    ("hello", "non-empty list"),
    ([{"role": "robot", "content": "hi"}], "messages[0].role"),
    ([{"role": "user"}], "messages[0].content is required"),
    ([{"role": "user", "content": 42}], "messages[0].content must be a string"),
    ([{"role": "user", "content": ["parts"]}], "messages[0].content[0] must be a text part"),
    (
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
        "images and files are not accepted",
    ),
    ([{"role": "user", "content": [{"type": "text", "text": 7}]}], "content[0].text must be"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant"}], "content or tool_calls"),
    ([{"role": "tool", "content": "42"}], "tool_call_id"),
    (
        [{"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "function": {}}]}],
        "messages[0].tool_calls[0]",
    ),
    (
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x", "prefix": True}],
        "beta",
    ),
]


@pytest.mark.parametrize(("messages", "says"), BAD_MESSAGES)
def test_invalid_messages_are_refused_saying_which_and_why(
    base: str, headers: dict[str, str], messages: Any, says: str
) -> None:
    body: dict[str, Any] = {"model": "deepseek-chat"}
    if messages is not None:
        body["messages"] = messages
    response = httpx.post(base + "/v1/chat/completions", headers=headers, json=body)
    error = assert_envelope(response, 400, "invalid_request_error")
    assert error["param"] == "messages" and says in error["message"]


def test_a_whole_conversation_with_tools_is_accepted(base: str, headers: dict[str, str]) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Look up OPS-17", "name": "alice"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": "{}"},
                }
            ],
            "refusal": None,  # SDK message objects carry extra keys; they are ignored
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "in review"},
    ]
    response = chat(base, headers, messages=messages, tools=tools)
    assert response.status_code == 200, response.text


def test_content_given_as_text_parts_is_taken_as_its_text(
    base: str, headers: dict[str, str]
) -> None:
    # OpenAI's clients (and DeepSeek since V4.1) take content as a list of text parts; the
    # parts are sent upstream as one string, as the reference advises.
    parts = [{"type": "text", "text": "[[sim: say=Parts "}, {"type": "text", "text": "joined]]"}]
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": parts},
    ]
    response = chat(base, headers, messages=messages)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Parts joined"


def test_a_body_that_is_not_json_is_a_400_and_a_bad_key_is_told_first(
    base: str, headers: dict[str, str]
) -> None:
    url = base + "/v1/chat/completions"
    response = httpx.post(
        url, headers={**headers, "Content-Type": "application/json"}, content=b"{nope"
    )
    error = assert_envelope(response, 400, "invalid_request_error")
    assert "JSON" in error["message"]
    assert_envelope(
        httpx.post(url, headers=headers, content=b"[1, 2]"), 400, "invalid_request_error"
    )
    assert_envelope(
        httpx.post(url, headers=bearer("sk-team-" + "x" * 40), content=b"{nope"),
        401,
        "authentication_error",
    )


def test_a_body_over_two_megabytes_is_refused_with_413(base: str, headers: dict[str, str]) -> None:
    big = "a" * (2 * 1024 * 1024)
    response = chat(base, headers, messages=[{"role": "user", "content": big}])
    error = assert_envelope(response, 413, "invalid_request_error")
    assert "2 MB" in error["message"]
    almost = "a" * (1024 * 1024)
    response = chat(
        base, headers, messages=[{"role": "user", "content": almost + " [[sim: say=fine]]"}]
    )
    assert response.status_code == 200, response.text[:300]


def test_other_methods_are_refused_in_the_envelope(base: str, headers: dict[str, str]) -> None:
    response = httpx.get(base + "/v1/chat/completions", headers=headers)
    assert_envelope(response, 405, "invalid_request_error")
    assert response.headers["allow"] == "POST"
    assert_envelope(httpx.post(base + "/v1/models", headers=headers), 405, "invalid_request_error")


def test_a_path_under_v1_the_api_does_not_serve_is_a_json_404(
    base: str, headers: dict[str, str]
) -> None:
    # A client with a misconfigured base URL (a path of another API) gets the API's envelope
    # saying what it serves, not the site's HTML page. (A trailing slash on one of the API's
    # own paths is that path: tests/test_api_paths_with_a_trailing_slash.py.)
    for method, path in [
        ("POST", "/v1/chat/completions/x"),
        ("GET", "/v1/models/deepseek-chat/x"),
        ("POST", "/v1/completions"),
        ("POST", "/v1/embeddings"),
        ("GET", "/v1"),
    ]:
        response = httpx.request(method, base + path, headers=headers, json={})
        error = assert_envelope(response, 404, "invalid_request_error")
        assert error["code"] == "not_found"
        assert path in error["message"] and "/v1/chat/completions" in error["message"]
    # The site's own pages are Django's as before.
    assert httpx.get(base + "/healthz").status_code == 200


def test_deepseeks_beta_base_url_is_told_it_is_not_offered_in_the_envelope(
    base: str, headers: dict[str, str]
) -> None:
    # DeepSeek documents https://api.deepseek.com/beta as the base URL of chat prefix
    # completion, FIM and strict tools; a client pointed at ours got the site's HTML 404 page.
    for method, path in [
        ("POST", "/beta/chat/completions"),
        ("POST", "/beta/completions"),
        ("GET", "/beta/models"),
        ("GET", "/beta"),
    ]:
        response = httpx.request(method, base + path, headers=headers, json={})
        error = assert_envelope(response, 404, "invalid_request_error")
        assert error["code"] == "not_found" and path in error["message"]
        assert "beta features" in error["message"] and "/v1/chat/completions" in error["message"]
    assert not UsageRecord.objects.exists()


def test_head_on_the_read_endpoints_answers_like_get_without_a_body(
    base: str, headers: dict[str, str]
) -> None:
    for path in ("/v1/models", "/models", "/user/balance"):
        got = httpx.get(base + path, headers=headers)
        head = httpx.head(base + path, headers=headers)
        assert got.status_code == head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == str(len(got.content))
        assert head.headers["content-type"] == got.headers["content-type"]
    # Authentication is the same: no key, a 401 (without a body).
    refused = httpx.head(base + "/v1/models")
    assert refused.status_code == 401 and refused.content == b""
    # The endpoints say what they take; HEAD on the chat endpoint is not among its methods.
    assert httpx.post(base + "/v1/models", headers=headers).headers["allow"] == "GET, HEAD"
    assert httpx.head(base + "/v1/chat/completions", headers=headers).status_code == 405
