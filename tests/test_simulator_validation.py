from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulator.testing import running_simulator

AUTH = {"Authorization": "Bearer sk-alice"}
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def current() -> Iterator[httpx.Client]:
    with (
        running_simulator(profile="current-2026") as url,
        httpx.Client(base_url=url, headers=AUTH) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def legacy() -> Iterator[httpx.Client]:
    with (
        running_simulator(profile="legacy-2025") as url,
        httpx.Client(base_url=url, headers=AUTH) as client,
    ):
        yield client


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"]
    assert list(body["error"]) == ["message", "type", "param", "code"]
    assert body["error"]["param"] is None
    assert body["error"]["code"] == "invalid_request_error"
    return body["error"]


def test_an_unknown_model_is_a_400_model_not_exist(current: httpx.Client) -> None:
    response = current.post("/chat/completions", json={"model": "gpt-4o", "messages": HELLO})
    assert error_of(response, 400)["message"] == "Model Not Exist"


@pytest.mark.parametrize("model", ["deepseek-chat", "deepseek-reasoner"])
def test_retired_names_are_a_400_in_the_current_profile(current: httpx.Client, model: str) -> None:
    response = current.post("/chat/completions", json={"model": model, "messages": HELLO})
    assert error_of(response, 400)["message"] == (
        "The supported API model names are deepseek-v4-pro or deepseek-v4-flash, "
        f"but you passed {model}."
    )


def test_v4_names_are_unknown_in_the_legacy_profile(legacy: httpx.Client) -> None:
    response = legacy.post("/chat/completions", json={"model": "deepseek-flash", "messages": HELLO})
    assert error_of(response, 400)["message"] == "Model Not Exist"


@pytest.mark.parametrize("max_tokens", [0, 8193])
def test_max_tokens_out_of_range_names_the_valid_range(
    legacy: httpx.Client, max_tokens: int
) -> None:
    response = legacy.post(
        "/chat/completions",
        json={"model": "deepseek-chat", "messages": HELLO, "max_tokens": max_tokens},
    )
    assert error_of(response, 400)["message"] == (
        "Invalid max_tokens value, the valid range of max_tokens is [1, 8192]"
    )


def test_the_reasoner_and_v4_have_their_own_max_tokens_range(
    legacy: httpx.Client, current: httpx.Client
) -> None:
    response = legacy.post(
        "/chat/completions",
        json={"model": "deepseek-reasoner", "messages": HELLO, "max_tokens": 70000},
    )
    assert error_of(response, 400)["message"].endswith("[1, 65536]")
    response = current.post(
        "/chat/completions",
        json={"model": "deepseek-flash", "messages": HELLO, "max_tokens": 400000},
    )
    assert error_of(response, 400)["message"].endswith("[1, 393216]")


def test_a_prompt_over_the_legacy_context_is_a_400_with_the_counts(legacy: httpx.Client) -> None:
    # 440,000 ASCII characters ≈ 132,000 tokens, over the 131,072-token context.
    big = "word " * 88_000
    response = legacy.post(
        "/chat/completions",
        json={"model": "deepseek-chat", "messages": [{"role": "user", "content": big}]},
    )
    message = error_of(response, 400)["message"]
    assert message.startswith("This model's maximum context length is 131072 tokens.")
    assert "(132000 in the messages, 4096 in the completion)" in message
    assert "However, you requested 136096 tokens" in message


def test_max_tokens_counts_towards_the_context() -> None:
    with running_simulator(context_length=100) as url:
        response = httpx.post(
            f"{url}/chat/completions",
            headers=AUTH,
            json={"model": "deepseek-flash", "messages": HELLO, "max_tokens": 99},
        )
        assert error_of(response, 400)["message"] == (
            "This model's maximum context length is 100 tokens. However, you requested 101 "
            "tokens (2 in the messages, 99 in the completion). Please reduce the length of the "
            "messages or completion."
        )


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("temperature", 2.5, "[0, 2]"),
        ("temperature", -0.1, "[0, 2]"),
        ("top_p", 1.5, "(0, 1]"),
        ("top_p", 0, "(0, 1]"),
        ("frequency_penalty", 2.5, "[-2, 2]"),
        ("presence_penalty", -3, "[-2, 2]"),
    ],
)
def test_sampling_parameters_out_of_range_are_a_400(
    current: httpx.Client, field: str, value: float, shown: str
) -> None:
    response = current.post(
        "/chat/completions",
        json={"model": "deepseek-flash", "messages": HELLO, field: value},
    )
    assert error_of(response, 400)["message"] == (
        f"Invalid {field} value, the valid range of {field} is {shown}"
    )


def test_top_logprobs_needs_logprobs(current: httpx.Client) -> None:
    response = current.post(
        "/chat/completions",
        json={"model": "deepseek-flash", "messages": HELLO, "top_logprobs": 3},
    )
    assert "logprobs" in error_of(response, 400)["message"]
    response = current.post(
        "/chat/completions",
        json={"model": "deepseek-flash", "messages": HELLO, "logprobs": True, "top_logprobs": 21},
    )
    assert error_of(response, 400)["message"].endswith("[0, 20]")


def tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}


def test_more_than_128_tools_is_a_400(current: httpx.Client) -> None:
    tools = [tool(f"tool_{i}") for i in range(129)]
    response = current.post(
        "/chat/completions", json={"model": "deepseek-flash", "messages": HELLO, "tools": tools}
    )
    assert "128" in error_of(response, 400)["message"]


def test_exactly_128_tools_is_fine(current: httpx.Client) -> None:
    tools = [tool(f"tool_{i}") for i in range(128)]
    response = current.post(
        "/chat/completions", json={"model": "deepseek-flash", "messages": HELLO, "tools": tools}
    )
    assert response.status_code == 200


@pytest.mark.parametrize("name", ["has space", "x" * 65, "dots.not.allowed", ""])
def test_tool_names_must_match_the_pattern(current: httpx.Client, name: str) -> None:
    response = current.post(
        "/chat/completions",
        json={"model": "deepseek-flash", "messages": HELLO, "tools": [tool(name)]},
    )
    assert "Invalid function name" in error_of(response, 400)["message"]


def test_a_tool_type_other_than_function_is_a_deserialization_error(
    current: httpx.Client, legacy: httpx.Client
) -> None:
    tools = [{"type": "retrieval", "function": {"name": "x"}}]
    for client, model, status in ((current, "deepseek-flash", 400), (legacy, "deepseek-chat", 422)):
        response = client.post(
            "/chat/completions", json={"model": model, "messages": HELLO, "tools": tools}
        )
        message = error_of(response, status)["message"]
        assert message.startswith("Failed to deserialize the JSON body into the target type: ")
        assert "unknown variant `retrieval`, expected `function`" in message


def test_a_named_tool_choice_must_name_a_given_tool(current: httpx.Client) -> None:
    response = current.post(
        "/chat/completions",
        json={
            "model": "deepseek-flash",
            "thinking": {"type": "disabled"},
            "messages": HELLO,
            "tools": [tool("lookup")],
            "tool_choice": {"type": "function", "function": {"name": "other"}},
        },
    )
    assert "other" in error_of(response, 400)["message"]


def test_required_tool_choice_needs_tools(current: httpx.Client) -> None:
    response = current.post(
        "/chat/completions",
        json={
            "model": "deepseek-flash",
            "thinking": {"type": "disabled"},
            "messages": HELLO,
            "tool_choice": "required",
        },
    )
    error_of(response, 400)


def test_malformed_json_is_a_422_in_legacy_and_a_400_in_current(
    current: httpx.Client, legacy: httpx.Client
) -> None:
    for client, status in ((legacy, 422), (current, 400)):
        response = client.post(
            "/chat/completions",
            content=b'{"model": "deepseek-chat", "messages": [',
            headers={"Content-Type": "application/json"},
        )
        message = error_of(response, status)["message"]
        assert message.startswith("Failed to deserialize the JSON body into the target type: ")
        assert "line 1 column" in message


def test_a_missing_field_names_it_like_serde(legacy: httpx.Client) -> None:
    response = legacy.post("/chat/completions", json={"model": "deepseek-chat"})
    assert "missing field `messages`" in error_of(response, 422)["message"]
    response = legacy.post(
        "/chat/completions", json={"model": "deepseek-chat", "messages": [{"role": "user"}]}
    )
    assert "messages[0]: missing field `content`" in error_of(response, 422)["message"]


def test_tool_content_must_be_a_string(current: httpx.Client) -> None:
    messages = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "content": "",
            "reasoning_content": "",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "x"}]},
    ]
    response = current.post(
        "/chat/completions", json={"model": "deepseek-flash", "messages": messages}
    )
    assert "invalid type: sequence, expected a string" in error_of(response, 400)["message"]


def test_an_assistant_message_needs_content_or_tool_calls(current: httpx.Client) -> None:
    messages = [*HELLO, {"role": "assistant", "content": None}, {"role": "user", "content": "?"}]
    response = current.post(
        "/chat/completions", json={"model": "deepseek-flash", "messages": messages}
    )
    assert error_of(response, 400)["message"] == "content or tool_calls must be set"


def test_prefix_outside_beta_is_a_400_naming_the_beta_url(current: httpx.Client) -> None:
    messages = [*HELLO, {"role": "assistant", "content": "```python\n", "prefix": True}]
    response = current.post(
        "/chat/completions",
        json={"model": "deepseek-flash", "thinking": {"type": "disabled"}, "messages": messages},
    )
    assert error_of(response, 400)["message"] == (
        'prefix is only available when using beta api (set base_url="https://api.deepseek.com/beta")'
    )
