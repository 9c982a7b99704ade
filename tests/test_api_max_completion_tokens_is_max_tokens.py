"""``max_completion_tokens`` — OpenAI's newer name for ``max_tokens``, which the OpenAI SDKs
offer and LangChain's ChatOpenAI sends in place of ``max_tokens`` — is taken as ``max_tokens``:
the same range, cap and reservation, and the output stops there. DeepSeek documents only
``max_tokens`` and silently ignores the other name (the limit is then never applied); a 400
for a field every OpenAI client knows helped nobody. Both names with different values is a
400 naming ``max_completion_tokens``."""

from __future__ import annotations

import openai
import pytest

from conversations.models import ModelConfig, User
from tests.test_api_support import make_key, settled_record

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

WORDS = " ".join(f"word{i}" for i in range(40))


@pytest.fixture
def client(base: str, alice: User, chat_model: ModelConfig) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key=make_key(alice), max_retries=0)


@pytest.mark.parametrize("stream", [False, True])
def test_the_output_stops_at_max_completion_tokens(client: openai.OpenAI, stream: bool) -> None:
    completion = client.chat.completions.create(
        model="deepseek-chat",
        messages=[{"role": "user", "content": f"[[sim: say={WORDS}]]"}],
        max_completion_tokens=5,
        stream=stream,
    )
    if stream:
        chunks = list(completion)  # type: ignore[arg-type]
        finish, usage = chunks[-1].choices[0].finish_reason, chunks[-1].usage
    else:
        finish, usage = completion.choices[0].finish_reason, completion.usage  # type: ignore[union-attr]
    assert finish == "length"
    assert usage is not None and usage.completion_tokens <= 5
    record = settled_record()
    assert record.completion_tokens == usage.completion_tokens


def test_its_range_is_max_tokens_range(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="deepseek-chat",
            messages=[{"role": "user", "content": "Hi"}],
            max_completion_tokens=100_000,
        )
    # Named as sent: the client set max_completion_tokens, not max_tokens.
    assert refused.value.param == "max_completion_tokens"
    assert (
        "Invalid max_completion_tokens value, the valid range of max_completion_tokens is [1, 8192]"
        in refused.value.message
    )


def test_both_names_must_agree(client: openai.OpenAI) -> None:
    messages: list[dict[str, str]] = [{"role": "user", "content": "[[sim: say=ok]]"}]
    same = client.chat.completions.create(
        model="deepseek-chat",
        messages=messages,  # type: ignore[arg-type]
        max_tokens=7,
        max_completion_tokens=7,
    )
    assert same.choices[0].message.content == "ok"
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="deepseek-chat",
            messages=messages,  # type: ignore[arg-type]
            max_tokens=7,
            max_completion_tokens=9,
        )
    assert refused.value.param == "max_completion_tokens"
