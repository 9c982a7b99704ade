"""Two 200s of DeepSeek's are not answers (``deepseek-api.md`` §4.2, §8.5): a reply cut by
``finish_reason: "insufficient_system_resource"`` and, in JSON mode, content of only
whitespace. The API retries them upstream and, when they persist, answers with a failure a
client retries (never a completion that looks finished): its status before any output, a
stream's error event after it, as the README says."""

from __future__ import annotations

import pytest

from conversations.models import ModelConfig, User
from tests.test_api_support import assert_envelope, bearer, chat, make_key, sse_events

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

OUT_OF_CAPACITY = [{"role": "user", "content": "[[sim: finish=insufficient_system_resource]]"}]
BLANK_JSON = [{"role": "user", "content": 'Reply in json like {"a": 1} [[sim: json=blank]]'}]


@pytest.fixture
def headers(alice: User, chat_model: ModelConfig) -> dict[str, str]:
    return bearer(make_key(alice))


def test_a_provider_out_of_capacity_is_a_retryable_503(base: str, headers: dict[str, str]) -> None:
    response = chat(base, headers, messages=OUT_OF_CAPACITY)
    error = assert_envelope(response, 503, "api_error")
    assert error["code"] == "insufficient_system_resource"
    assert "x-should-retry" not in response.headers


def test_a_stream_out_of_capacity_after_output_ends_with_an_error_event(
    base: str, headers: dict[str, str]
) -> None:
    response = chat(base, headers, messages=OUT_OF_CAPACITY, stream=True)
    assert response.status_code == 200
    data, _ = sse_events(response.text)
    assert '"content":"' in data[1]  # the partial answer went out as it came
    assert "[DONE]" not in data
    assert '"code":"insufficient_system_resource"' in data[-1]
    assert all('"finish_reason":"insufficient_system_resource"' not in d for d in data)


@pytest.mark.parametrize("stream", [False, True])
def test_json_mode_content_of_only_whitespace_is_a_retryable_502(
    base: str, headers: dict[str, str], stream: bool
) -> None:
    response = chat(
        base,
        headers,
        messages=BLANK_JSON,
        response_format={"type": "json_object"},
        stream=stream,
    )
    error = assert_envelope(response, 502, "api_error")
    assert error["code"] == "blank_json_output"
    assert "x-should-retry" not in response.headers
