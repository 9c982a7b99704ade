"""A provider's explanation of a refused request (a 400 or 422, passed on to the caller) that
names the model names it as the caller knows it: the registry's name, not the upstream id the
administrator mapped it to, which is the deployment's business (and may differ).

Before, the explanation came as the provider wrote it: a call to ``deepseek-chat`` mapped to
the upstream's ``deepseek-reasoner`` was told "deepseek-reasoner does not support successive
user or assistant messages", streamed or not."""

from __future__ import annotations

import pytest

from conversations.models import ModelConfig, UsageRecord, User
from conversations.upstream.errors import renamed
from tests.test_api_support import assert_envelope, bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


# The R1-era reasoner, whose refusals of a history name it (the worker of ``base``).
SIMULATOR_OPTIONS = {"profile": "legacy-2025"}


@pytest.fixture
def mapped(chat_model: ModelConfig) -> ModelConfig:
    """Our ``deepseek-chat``, mapped by the administrator to the upstream's reasoner."""
    ModelConfig.objects.filter(pk=chat_model.pk).update(
        upstream_model="deepseek-reasoner", thinking=True, reasoning_passback="strip"
    )
    return chat_model


@pytest.mark.parametrize("stream", [False, True])
def test_the_explanation_names_the_model_the_client_called(
    base: str, alice: User, mapped: ModelConfig, stream: bool
) -> None:
    twice = [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Hello?"}]
    response = chat(
        base, bearer(make_key(alice)), {"model": "deepseek-chat", "messages": twice}, stream=stream
    )
    error = assert_envelope(response, 400, "invalid_request_error")
    assert error["message"].startswith(
        "deepseek-chat does not support successive user or assistant messages (messages[0] and "
        "messages[1] in your input)."
    ), error["message"]
    assert "deepseek-reasoner" not in response.text
    record = UsageRecord.objects.get(user=alice)
    assert (record.state, record.outcome, record.total_tokens) == ("settled", "failed", 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("deepseek-reasoner rejects it.", "deepseek-chat rejects it."),
        ("you passed deepseek-reasoner.", "you passed deepseek-chat."),
        ("`deepseek-reasoner` and (deepseek-reasoner)", "`deepseek-chat` and (deepseek-chat)"),
        (
            "deepseek-reasoner-v2 and my-deepseek-reasoner",
            "deepseek-reasoner-v2 and my-deepseek-reasoner",
        ),
        ("deepseek-reasoner.v2 is other", "deepseek-reasoner.v2 is other"),
        ("Invalid max_tokens value", "Invalid max_tokens value"),
    ],
)
def test_only_the_upstream_id_itself_is_renamed(text: str, expected: str) -> None:
    assert renamed(text, "deepseek-reasoner", "deepseek-chat") == expected
