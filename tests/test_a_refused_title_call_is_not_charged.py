"""The title call goes through the same settlement rules as a reply: when the provider refused
it or never took it (an error status before any answer, no connection: ``billed`` False) it
pays nothing, as the README says of every call; a billed failure pays its prompt estimate."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from conversations import actions, generation
from conversations.models import Conversation, ModelConfig, Policy, UsageRecord, User
from conversations.upstream.errors import Overloaded, Truncated, Unreachable, UpstreamError

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


class FailingClient:
    def __init__(self, error: UpstreamError) -> None:
        self.error = error

    async def complete_chat(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


class Service:
    def __init__(self, error: UpstreamError) -> None:
        self.client = FailingClient(error)
        self.published: list[dict[str, Any]] = []

    async def publish(self, group: str, event: dict[str, Any]) -> None:
        self.published.append(event)


async def run_title_call(user: User, model: ModelConfig, error: UpstreamError) -> UsageRecord:
    conversation = await Conversation.objects.acreate(owner=user, model=model)
    context = actions.GenerationContext(
        reply_id=uuid.uuid4(),
        conversation_id=conversation.pk,
        user_id=user.pk,
        model=model,
        messages=[],
        params={},
        record_id=None,
        prefix=False,
        content="",
        reasoning="",
        logprobs=[],
        tool_calls=[],
        seq=0,
        needs_title=True,
        first_user_text="How do I rotate the deploy keys of our staging cluster safely?",
    )
    service = Service(error)
    await generation.generate_title(service, context, "Rotate them one at a time.")  # type: ignore[arg-type]
    assert service.published  # the fallback title all the same
    return await UsageRecord.objects.aget(purpose=UsageRecord.Purpose.TITLE)


@pytest.mark.parametrize("error", [Overloaded(), Unreachable()], ids=["503", "unreachable"])
async def test_a_title_call_the_provider_did_not_take_pays_nothing(
    alice: User, chat_model: ModelConfig, error: UpstreamError
) -> None:
    await Policy.objects.all().adelete()
    record = await run_title_call(alice, chat_model, error)
    assert record.state == UsageRecord.State.SETTLED
    assert (record.prompt_tokens, record.completion_tokens, record.total_tokens) == (0, 0, 0)
    assert record.cost == 0


async def test_a_billed_title_failure_pays_its_prompt(alice: User, chat_model: ModelConfig) -> None:
    await Policy.objects.all().adelete()
    record = await run_title_call(alice, chat_model, Truncated())
    assert record.state == UsageRecord.State.SETTLED
    assert record.prompt_tokens > 0 and record.estimated
