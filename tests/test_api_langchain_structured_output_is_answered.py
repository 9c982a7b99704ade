"""LangChain's structured output works: ``ChatDeepSeek.with_structured_output(Schema)`` (its
default method) and ``ChatOpenAI``'s ``function_calling`` method bind the schema as the one
tool, name it in ``tool_choice`` and send ``parallel_tool_calls: false`` on every call. That
field used to be a 400 "Unknown field: parallel_tool_calls", so LangChain's most used way of
getting structured data out of DeepSeek failed against the API. It is accepted (true, false or
null) and not forwarded; anything else is a 400 naming it."""

from __future__ import annotations

import json

import openai
import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests.test_api_support import assert_envelope, bearer, chat, make_key, settled_record

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

# What langchain-deepseek 1.1.1 sends for ``with_structured_output(Weather)``, besides the
# messages and the model.
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "Weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
STRUCTURED_OUTPUT = {
    "tools": [WEATHER_TOOL],
    "tool_choice": {"type": "function", "function": {"name": "Weather"}},
    "parallel_tool_calls": False,
}


@pytest.mark.parametrize("stream", [False, True])
def test_a_structured_output_call_gets_its_tool_call_and_is_charged(
    base: str, alice: User, chat_model: ModelConfig, stream: bool
) -> None:
    client = openai.OpenAI(base_url=base + "/v1", api_key=make_key(alice), max_retries=0)
    completion = client.chat.completions.create(
        model="deepseek-chat",
        messages=[{"role": "user", "content": "Weather for Paris, please."}],
        stream=stream,
        **STRUCTURED_OUTPUT,  # type: ignore[arg-type]
    )
    if stream:
        arguments = "".join(
            call.function.arguments or ""
            for chunk in completion  # type: ignore[union-attr]
            for choice in chunk.choices
            for call in choice.delta.tool_calls or []
            if call.function is not None
        )
    else:
        [call] = completion.choices[0].message.tool_calls or []  # type: ignore[union-attr]
        assert call.function.name == "Weather"  # type: ignore[union-attr]
        arguments = call.function.arguments  # type: ignore[union-attr]
    assert json.loads(arguments) == {"city": "Paris"}
    record = settled_record()
    assert record.purpose == "api" and record.state == "settled" and record.outcome == "complete"


@pytest.mark.parametrize("value", [True, None])
def test_parallel_tool_calls_true_or_null_is_accepted_too(
    base: str, alice: User, chat_model: ModelConfig, value: bool | None
) -> None:
    response = chat(
        base,
        bearer(make_key(alice)),
        {"parallel_tool_calls": value},
        messages=[{"role": "user", "content": "[[sim: say=Fine.]]"}],
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Fine."


@pytest.mark.parametrize("value", [1, "false", {}])
def test_parallel_tool_calls_that_is_not_a_boolean_is_refused_by_name(
    base: str, alice: User, chat_model: ModelConfig, value: object
) -> None:
    error = assert_envelope(
        chat(base, bearer(make_key(alice)), {"parallel_tool_calls": value}),
        400,
        "invalid_request_error",
    )
    assert error["param"] == "parallel_tool_calls" and "true or false" in error["message"]
    assert not UsageRecord.objects.exists()
