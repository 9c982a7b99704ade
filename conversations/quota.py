"""Admission and settlement: the one seam every upstream call goes through.

``admit`` runs inside the caller's transaction and inserts the call's ledger row as
``reserved`` with the worst case (estimated prompt + ``max_tokens``); ``settle`` turns that
same row into the provider's counts, or an estimate flagged as such, exactly once.
Limits (who may use which model, how many tokens) are enforced in ``admit``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Q
from django.utils import timezone

from conversations.errors import ModelNotAllowed, Suspended
from conversations.models import Conversation, Message, ModelConfig, UsageRecord, User

MILLION = Decimal(1_000_000)


def estimate_tokens(text: str) -> int:
    """DeepSeek's documented ratio: ~0.3 token per ASCII character, ~0.6 per other character."""
    if not text:
        return 0
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    other = len(text) - ascii_chars
    return max(1, round(ascii_chars * 0.3 + other * 0.6))


def estimate_prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """Text of every message plus a few tokens of chat-template overhead each."""
    total = 0
    for message in messages:
        total += 4 + estimate_tokens(str(message.get("content") or ""))
        total += estimate_tokens(str(message.get("reasoning_content") or ""))
        if message.get("tool_calls"):
            total += estimate_tokens(str(message["tool_calls"]))
    return total


@dataclass(frozen=True)
class Counts:
    prompt: int
    cache_hit: int
    cache_miss: int
    completion: int
    reasoning: int
    estimated: bool

    @property
    def total(self) -> int:
        return self.prompt + self.completion


def counts_from_usage(usage: Mapping[str, Any]) -> Counts:
    """The provider's counts; both cache spellings accepted."""
    prompt = int(usage.get("prompt_tokens") or 0)
    hit = usage.get("prompt_cache_hit_tokens")
    if hit is None:
        hit = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    miss = usage.get("prompt_cache_miss_tokens")
    if miss is None:
        miss = max(0, prompt - int(hit))
    details = usage.get("completion_tokens_details") or {}
    return Counts(
        prompt=prompt,
        cache_hit=int(hit),
        cache_miss=int(miss),
        completion=int(usage.get("completion_tokens") or 0),
        reasoning=int(details.get("reasoning_tokens") or 0),
        estimated=False,
    )


def cost_of(model: ModelConfig, counts: Counts) -> Decimal:
    return (
        counts.cache_hit * model.price_input_cache_hit
        + counts.cache_miss * model.price_input_cache_miss
        + counts.completion * model.price_output
    ) / MILLION


def check_may_use(user: User, model: ModelConfig) -> None:
    """Refuse a suspended user or a disabled model (limits per policy come with the usage issue)."""
    if not user.is_active:
        raise Suspended()
    if not model.enabled:
        raise ModelNotAllowed(f"The model {model.name} is not available.", param="model")


def admit(
    user: User,
    model: ModelConfig,
    *,
    purpose: str,
    prompt_tokens: int,
    max_tokens: int,
    conversation: Conversation | None = None,
    message: Message | None = None,
) -> UsageRecord:
    """Reserve the worst case of one upstream call; call inside the caller's transaction."""
    check_may_use(user, model)
    return UsageRecord.objects.create(
        user=user,
        model=model,
        purpose=purpose,
        conversation=conversation,
        message=message,
        state=UsageRecord.State.RESERVED,
        reserved_tokens=prompt_tokens + max_tokens,
        # Kept as the estimate until the provider's usage replaces it.
        prompt_tokens=prompt_tokens,
        cache_miss_tokens=prompt_tokens,
    )


def settle(
    record_id: int,
    *,
    outcome: str,
    usage: Mapping[str, Any] | None,
    output_text: str = "",
) -> bool:
    """Settle a reservation to what the call used; False if it was already settled.

    Without the provider's usage (cancelled, cut off), the completion is estimated from the
    text received and the row is flagged ``estimated``.
    """
    record = (
        UsageRecord.objects.select_related("model")
        .filter(pk=record_id, state=UsageRecord.State.RESERVED)
        .first()
    )
    if record is None:
        return False
    if usage:
        counts = counts_from_usage(usage)
    else:
        counts = Counts(
            prompt=record.prompt_tokens,
            cache_hit=0,
            cache_miss=record.prompt_tokens,
            completion=estimate_tokens(output_text),
            reasoning=0,
            estimated=True,
        )
    # Conditional on the state, so two settlers (task and reaper) never both charge.
    return bool(
        UsageRecord.objects.filter(pk=record_id, state=UsageRecord.State.RESERVED).update(
            state=UsageRecord.State.SETTLED,
            outcome=outcome,
            reserved_tokens=0,
            prompt_tokens=counts.prompt,
            cache_hit_tokens=counts.cache_hit,
            cache_miss_tokens=counts.cache_miss,
            completion_tokens=counts.completion,
            reasoning_tokens=counts.reasoning,
            total_tokens=counts.total,
            cost=cost_of(record.model, counts),
            estimated=counts.estimated,
            settled_at=timezone.now(),
        )
    )


def reserved_for_message(message_id: object) -> Q:
    return Q(message_id=message_id, state=UsageRecord.State.RESERVED)
