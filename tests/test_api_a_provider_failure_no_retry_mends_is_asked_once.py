"""An upstream failure that no retry of the client's can mend — the provider rejecting our
key, its balance spent — says so with ``x-should-retry: false``, which the official OpenAI
SDKs obey: a script with default settings asks once, not three times (the 502 was retried
twice, each a new call admitted, refused upstream and settled). A failure the provider may get
over (its 503, after the upstream client's own retries) stays retryable."""

from __future__ import annotations

import httpx
import openai
import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests.test_api_support import make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def _counting_client(base: str, key: str, sent: list[str]) -> openai.OpenAI:
    http = httpx.Client(event_hooks={"request": [lambda request: sent.append(request.url.path)]})
    # The SDK's defaults otherwise: two retries.
    return openai.OpenAI(base_url=base + "/v1", api_key=key, http_client=http)


@pytest.mark.parametrize(
    ("fault", "code"),
    [("401", "upstream_auth_failed"), ("402", "upstream_insufficient_balance")],
)
@pytest.mark.parametrize("stream", [False, True])
def test_a_provider_failure_no_retry_mends_is_asked_once(
    base: str, alice: User, chat_model: ModelConfig, fault: str, code: str, stream: bool
) -> None:
    sent: list[str] = []
    client = _counting_client(base, make_key(alice), sent)
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(
            model="deepseek-chat",
            messages=[{"role": "user", "content": f"[[sim: fault={fault}]]"}],
            stream=stream,
        )
    assert failed.value.code == code
    assert failed.value.response.headers["x-should-retry"] == "false"
    assert sent == ["/v1/chat/completions"]
    assert UsageRecord.objects.filter(user=alice).count() == 1


def test_an_overloaded_provider_stays_retryable(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    sent: list[str] = []
    client = _counting_client(base, make_key(alice), sent).with_options(max_retries=0)
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "[[sim: fault=503]]"}]
        )
    assert failed.value.status_code == 503
    assert "x-should-retry" not in failed.value.response.headers
