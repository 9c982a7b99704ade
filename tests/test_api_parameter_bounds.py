"""Every parameter is accepted at its bounds and refused one step past them, with DeepSeek's
400 envelope naming the parameter; nothing is sent upstream or charged for a refused call."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import ModelConfig, UsageRecord, User, UserLimits
from tests.test_api_support import assert_envelope, bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

JSON_PROMPT = [{"role": "user", "content": 'Reply in json like {"a": 1}'}]


def _tools(count: int, **override: Any) -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {"name": f"tool_{i}", "parameters": {"type": "object"}}}
        | override
        for i in range(count)
    ]


# (parameter, accepted bodies, refused bodies)
CASES: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]] = [
    (
        "temperature",
        [{"temperature": 0}, {"temperature": 2}],
        [{"temperature": -0.01}, {"temperature": 2.01}, {"temperature": "1"}],
    ),
    ("top_p", [{"top_p": 0.01}, {"top_p": 1}], [{"top_p": 0}, {"top_p": 1.01}]),
    (
        "frequency_penalty",
        [{"frequency_penalty": -2}, {"frequency_penalty": 2}],
        [{"frequency_penalty": -2.01}, {"frequency_penalty": 2.01}],
    ),
    (
        "presence_penalty",
        [{"presence_penalty": -2}, {"presence_penalty": 2}],
        [{"presence_penalty": -2.01}, {"presence_penalty": 2.01}],
    ),
    (
        "max_tokens",
        [{"max_tokens": 1}, {"max_tokens": 8192}],
        [{"max_tokens": 0}, {"max_tokens": 8193}, {"max_tokens": 1.5}],
    ),
    (
        "top_logprobs",
        [{"logprobs": True, "top_logprobs": 0}, {"logprobs": True, "top_logprobs": 20}],
        [
            {"logprobs": True, "top_logprobs": 21},
            {"logprobs": True, "top_logprobs": -1},
            {"top_logprobs": 2},
            {"logprobs": False, "top_logprobs": 2},
        ],
    ),
    ("logprobs", [{"logprobs": False}], [{"logprobs": "yes"}]),
    (
        "response_format",
        [
            {"response_format": {"type": "text"}},
            {"response_format": {"type": "json_object"}, "messages": JSON_PROMPT},
        ],
        [{"response_format": {"type": "xml"}}, {"response_format": "json"}],
    ),
    (
        "stop",
        [{"stop": "x"}, {"stop": [f"s{i}" for i in range(16)]}],
        [{"stop": [f"s{i}" for i in range(17)]}, {"stop": 5}, {"stop": [""]}],
    ),
    (
        "tools",
        [{"tools": _tools(1)}, {"tools": _tools(128)}],
        [
            {"tools": _tools(129)},
            {"tools": _tools(1, type="retrieval")},
            {"tools": [{"type": "function", "function": {"name": "a b"}}]},
            {"tools": [{"type": "function", "function": {"name": "a", "strict": "yes"}}]},
        ],
    ),
    (
        "tool_choice",
        [
            {"tool_choice": "none"},
            {"tool_choice": "auto", "tools": _tools(1)},
            {
                "tool_choice": {"type": "function", "function": {"name": "tool_0"}},
                "tools": _tools(1),
            },
        ],
        [
            {"tool_choice": "sometimes"},
            {"tool_choice": "required"},
            {"tool_choice": {"type": "function", "function": {"name": "nope"}}, "tools": _tools(1)},
        ],
    ),
    ("stream", [{"stream": False}, {"stream": True}], [{"stream": "yes"}]),
    (
        "stream_options",
        [
            {"stream": True, "stream_options": {"include_usage": True}},
            {"stream": True, "stream_options": {"include_usage": False}},
        ],
        [
            {"stream_options": {"include_usage": True}},
            {"stream": True, "stream_options": {"include_usage": "yes"}},
            {"stream": True, "stream_options": {"other": 1}},
        ],
    ),
    ("thinking", [{"thinking": {"type": "disabled"}}], [{"thinking": {"type": "maybe"}}]),
    ("user_id", [{"user_id": "team-42"}], [{"user_id": "no spaces"}, {"user_id": "x" * 513}]),
    # null is unset, as for every optional field.
    ("n", [{"n": 1}, {"n": None}], [{"n": 2}, {"n": True}]),
]


@pytest.fixture
def headers(alice: User, chat_model: ModelConfig, reasoner_model: ModelConfig) -> dict[str, str]:
    return bearer(make_key(alice))


@pytest.mark.parametrize(("param", "accepted", "refused"), CASES, ids=[c[0] for c in CASES])
def test_each_parameter_at_its_bounds_and_one_step_past(
    base: str,
    headers: dict[str, str],
    alice: User,
    param: str,
    accepted: list[dict[str, Any]],
    refused: list[dict[str, Any]],
) -> None:
    for body in accepted:
        response = chat(
            base, headers, {"messages": [{"role": "user", "content": "[[sim: say=ok]]"}], **body}
        )
        assert response.status_code == 200, (body, response.text)
    charged = UsageRecord.objects.filter(user=alice).count()
    assert charged == len(accepted)
    for body in refused:
        error = assert_envelope(chat(base, headers, body), 400, "invalid_request_error")
        assert error["param"] == param, (body, error)
        assert param in error["message"], (body, error)
    assert UsageRecord.objects.filter(user=alice).count() == charged


def test_an_unknown_model_does_not_exist(base: str, headers: dict[str, str]) -> None:
    error = assert_envelope(chat(base, headers, model="gpt-4o"), 400, "invalid_request_error")
    assert error["message"] == "Model Not Exist" and error["param"] == "model"
    ModelConfig.objects.filter(name="deepseek-reasoner").update(enabled=False)
    error = assert_envelope(
        chat(base, headers, model="deepseek-reasoner"), 400, "invalid_request_error"
    )
    assert error["message"] == "Model Not Exist"


def test_a_capability_the_model_lacks_is_refused(base: str, headers: dict[str, str]) -> None:
    error = assert_envelope(
        chat(base, headers, model="deepseek-reasoner", logprobs=True), 400, "invalid_request_error"
    )
    assert error["param"] == "logprobs"
    error = assert_envelope(
        chat(base, headers, model="deepseek-reasoner", tools=_tools(1), tool_choice="required"),
        400,
        "invalid_request_error",
    )
    assert error["param"] == "tool_choice"


@pytest.mark.parametrize("max_tokens", [0, 8193])
def test_max_tokens_out_of_range_is_refused_in_deepseeks_words(
    base: str, headers: dict[str, str], max_tokens: int
) -> None:
    """deepseek-api.md §11, item 5: a client may match the provider's message."""
    error = assert_envelope(
        chat(base, headers, max_tokens=max_tokens), 400, "invalid_request_error"
    )
    assert (
        error["message"] == "Invalid max_tokens value, the valid range of max_tokens is [1, 8192]"
    )
    assert error["param"] == "max_tokens"


def test_max_tokens_defaults_to_4096_within_the_users_cap(
    base: str, headers: dict[str, str], alice: User
) -> None:
    long_answer = " ".join(f"w{i}" for i in range(300))
    UserLimits.objects.create(user=alice, max_output_tokens=50)
    error = assert_envelope(chat(base, headers, max_tokens=51), 400, "invalid_request_error")
    assert error["param"] == "max_tokens" and "50" in error["message"]
    response = chat(
        base, headers, messages=[{"role": "user", "content": f"[[sim: say={long_answer}]]"}]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 50
