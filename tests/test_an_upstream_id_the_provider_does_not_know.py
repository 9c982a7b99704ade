"""A model whose registry row names an upstream id the provider does not serve (a typo, a name
DeepSeek retired) is our configuration's fault, not the caller's: the provider's 400 ("Model Not
Exist", or "The supported API model names are … but you passed deepseek-chat.") reached API
clients as a 400 in the provider's words, as if their request were wrong, naming the
provider's model ids, and the chat showed the same. Now it is a 502 saying an administrator
must correct the registry, logged as an error with the provider's text, and charged nothing."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from conversations.models import ModelConfig, UsageRecord, User
from conversations.upstream import InvalidRequest, UnknownModel
from conversations.upstream.errors import error_from_response
from tests.test_api_support import api_server, bearer, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def envelope(message: str) -> bytes:
    return httpx.Response(
        400, json={"error": {"message": message, "type": "invalid_request_error"}}
    ).content


@pytest.mark.parametrize(
    "message",
    [
        "Model Not Exist",
        "The supported API model names are deepseek-v4-pro or deepseek-v4-flash, but you passed "
        "deepseek-chat.",
    ],
)
def test_the_providers_unknown_model_answers_are_our_configuration_s_fault(message: str) -> None:
    error = error_from_response(400, envelope(message), {}, "sk-x")
    assert isinstance(error, UnknownModel)
    assert (error.http_status, error.retryable, error.billed) == (502, False, False)
    assert message not in error.message and "registry" in error.message
    assert message in error.detail  # for the log


def test_any_other_400_is_still_the_request_s_own_fault() -> None:
    text = "This model's maximum context length is 131072 tokens."
    error = error_from_response(400, envelope(text), {}, "sk-x")
    assert type(error) is InvalidRequest and error.message == text


@pytest.fixture(scope="module")
def current_upstream(django_db_setup: None) -> Iterator[str]:
    # The provider as it is since 2026-07-24 (the simulator's default): old names are refused.
    with api_server(profile="current-2026") as url:
        yield url


@pytest.mark.parametrize("upstream_id", ["deepseek-chat", "deepseek-chatt"])
def test_an_api_call_to_a_misconfigured_model_is_a_502_for_the_admin(
    current_upstream: str,
    alice: User,
    chat_model: ModelConfig,
    upstream_id: str,
) -> None:
    ModelConfig.objects.filter(pk=chat_model.pk).update(upstream_model=upstream_id)
    response = httpx.post(
        f"{current_upstream}/v1/chat/completions",
        headers=bearer(make_key(alice)),
        json={"model": chat_model.name, "messages": [{"role": "user", "content": "Hi"}]},
        timeout=30,
    )
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "upstream_model_unknown"
    assert "registry" in error["message"]
    for provider_text in ("Model Not Exist", "deepseek-v4", "you passed"):
        assert provider_text not in response.text
    assert response.headers["x-should-retry"] == "false"
    record = UsageRecord.objects.get(user=alice)
    assert (record.state, record.reserved_tokens) == (UsageRecord.State.SETTLED, 0)
    assert record.prompt_tokens + record.completion_tokens == 0
