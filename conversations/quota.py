"""Admission and settlement: the one seam every upstream call goes through (browser, titles, API).

``admit`` checks who may use what and reserves the worst case of the call (padded prompt
estimate + ``max_tokens``) against the user's day and month allowance, requests per minute and
concurrent streams, in one conditional statement, and inserts the call's ledger row as
``reserved``. ``settle`` turns that same row into the provider's counts (or an estimate,
flagged), exactly once, and gives back what was reserved and not used. Limits are never
overshot: concurrent admissions queue on the counter rows and each re-checks its cap.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from conversations.errors import (
    ChatError,
    InvalidParameter,
    ModelNotAllowed,
    QuotaExceeded,
    RateLimited,
    Suspended,
    TooManyStreams,
)
from conversations.models import (
    ApiKey,
    Conversation,
    Message,
    ModelConfig,
    Policy,
    UsageCounter,
    UsageRecord,
    User,
    UserLimits,
)

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


STREAMS_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# The prompt is estimated before the call; padded so that the provider's count, which
# replaces it at settlement, stays within what was reserved.
PROMPT_PADDING = 1.1
PROMPT_SLACK = 16
_LIMIT_FIELDS = (
    "tokens_per_day",
    "tokens_per_month",
    "max_output_tokens",
    "requests_per_minute",
    "concurrent_streams",
)


@dataclass(frozen=True)
class Limits:
    """A user's effective limits; ``None`` is unlimited."""

    suspended: bool = False
    allowed_model_ids: frozenset[int] | None = None
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None
    max_output_tokens: int | None = None
    requests_per_minute: int | None = None
    concurrent_streams: int | None = None
    api_access: bool = True
    source: str = "no policy"

    def allows(self, model: ModelConfig) -> bool:
        return model.enabled and (
            self.allowed_model_ids is None or model.pk in self.allowed_model_ids
        )


def _from_policy(policy: Policy, source: str) -> Limits:
    return Limits(
        allowed_model_ids=None
        if policy.all_models
        else frozenset(m.pk for m in policy.allowed_models.all()),
        api_access=policy.api_access,
        source=source,
        **{name: getattr(policy, name) for name in _LIMIT_FIELDS},
    )


def _most_generous(policies: Sequence[Policy]) -> Limits:
    """Field by field, the largest limit among the user's groups (unlimited beats any number)."""
    merged: dict[str, Any] = {}
    for name in _LIMIT_FIELDS:
        values = [getattr(p, name) for p in policies]
        merged[name] = None if any(v is None for v in values) else max(values)
    models: frozenset[int] | None = None
    if not any(p.all_models for p in policies):
        models = frozenset(m.pk for p in policies for m in p.allowed_models.all())
    return Limits(
        allowed_model_ids=models,
        api_access=any(p.api_access for p in policies),
        source="groups: " + ", ".join(sorted(p.name for p in policies)),
        **merged,
    )


def limits_for(user: User) -> Limits:
    """The user's own policy, else the most generous of their groups' policies, else the
    default policy; then the user's overrides, field by field."""
    own = UserLimits.objects.filter(user=user).select_related("policy").first()
    if own is not None and own.policy is not None:
        limits = _from_policy(own.policy, f"policy {own.policy.name} (assigned to the user)")
    else:
        # Allowed models are read only for policies that restrict them (most allow every
        # model), so no prefetch here.
        group_policies = list(Policy.objects.filter(groups__user=user).distinct())
        default = None if group_policies else Policy.objects.filter(is_default=True).first()
        if group_policies:
            limits = _most_generous(group_policies)
        elif default is not None:
            limits = _from_policy(default, f"policy {default.name} (default)")
        else:
            limits = Limits()
    if own is None:
        return limits
    overrides = {
        name: getattr(own, name) for name in _LIMIT_FIELDS if getattr(own, name) is not None
    }
    return replace(limits, suspended=own.suspended, **overrides)


@dataclass(frozen=True)
class Periods:
    minute: datetime
    day: datetime
    month: datetime
    next_day: datetime
    next_month: datetime


def _midnight(moment: datetime) -> datetime:
    return timezone.localtime(moment).replace(hour=0, minute=0, second=0, microsecond=0)


def periods_at(moment: datetime) -> Periods:
    """Minute, day and month starts in the deployment's time zone (settings.TIME_ZONE)."""
    day = _midnight(moment)
    month = day.replace(day=1)
    return Periods(
        minute=moment.replace(second=0, microsecond=0),
        day=day,
        month=month,
        next_day=_midnight(day + timedelta(hours=26)),
        next_month=_midnight((month + timedelta(days=32)).replace(day=1)),
    )


def _describe_reset(moment: datetime) -> str:
    local = timezone.localtime(moment)
    return f"{local:%H:%M on %d %b %Y} ({timezone.get_current_timezone_name()})"


def check_may_use(user: User, model: ModelConfig, limits: Limits | None = None) -> Limits:
    """Refuse a suspended user, or a model that is disabled or not allowed to the user."""
    limits = limits or limits_for(user)
    if not user.is_active or limits.suspended:
        raise Suspended()
    if not limits.allows(model):
        raise ModelNotAllowed(f"You may not use the model {model.name}.", param="model")
    return limits


def max_tokens_for(model: ModelConfig, requested: int | None, limits: Limits) -> int:
    """The output budget of a call: what was asked, or the model's default within the cap."""
    if requested is not None:
        return requested
    cap = limits.max_output_tokens
    return min(model.default_max_tokens, cap) if cap else model.default_max_tokens


def _reserve(user: User, amounts: list[tuple[str, datetime, int, int | None]]) -> set[str]:
    """One conditional UPDATE over the user's counters: each row takes its amount only if it
    stays within its cap. Concurrent admissions queue on the row locks and each re-checks its
    condition against the committed value, so no interleaving overshoots. Returns the periods
    that took their amount; the caller rolls back unless all did."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO conversations_usagecounter (user_id, period, start, used) VALUES "  # noqa: S608 - placeholders only
            + ", ".join(["(%s, %s, %s, 0)"] * len(amounts))
            + " ON CONFLICT (user_id, period, start) DO NOTHING",
            [value for period, start, _, _ in amounts for value in (user.pk, period, start)],
        )
        # Rows are locked in id order first (a materialized CTE), so concurrent admissions
        # and settlements of one user queue instead of deadlocking on each other's rows.
        cursor.execute(
            "WITH locked AS MATERIALIZED (SELECT id FROM conversations_usagecounter "  # noqa: S608 - placeholders only
            "WHERE user_id = %s AND (period, start) IN ("
            + ", ".join(["(%s, %s::timestamptz)"] * len(amounts))
            + ") ORDER BY id FOR UPDATE) "
            "UPDATE conversations_usagecounter AS c SET used = c.used + v.amount FROM (VALUES "
            + ", ".join(["(%s, %s::timestamptz, %s::bigint, %s::bigint)"] * len(amounts))
            + ") AS v(period, start, amount, cap) "
            "WHERE c.id IN (SELECT id FROM locked) AND c.period = v.period AND c.start = v.start "
            "AND (v.cap IS NULL OR c.used + v.amount <= v.cap) RETURNING c.period",
            [user.pk]
            + [value for period, start, _, _ in amounts for value in (period, start)]
            + [value for row in amounts for value in row],
        )
        return {row[0] for row in cursor.fetchall()}


def _counter_values(user: User, periods: Periods) -> dict[str, int]:
    rows = UsageCounter.objects.filter(
        user=user, period__in=["day", "month"], start__in=[periods.day, periods.month]
    ).values_list("period", "used")
    return {period: max(0, used) for period, used in rows}


def _refusal(
    user: User, limits: Limits, periods: Periods, failed: set[str], tokens: int
) -> ChatError:
    if "streams" in failed:
        return TooManyStreams(
            f"You may have at most {limits.concurrent_streams} replies running at once; "
            "wait for one to finish or stop it."
        )
    if "minute" in failed:
        wait = 60 - timezone.now().second
        return RateLimited(
            f"You may send at most {limits.requests_per_minute} requests per minute; try again in {wait} s.",
            retry_after=wait,
        )
    used = _counter_values(user, periods)
    if "day" in failed:
        period, cap, resets = "day", limits.tokens_per_day, periods.next_day
    else:
        period, cap, resets = "month", limits.tokens_per_month, periods.next_month
    name = "daily" if period == "day" else "monthly"
    return QuotaExceeded(
        f"This would exceed your {name} limit of {cap:,} tokens ({used.get(period, 0):,} used or "
        f"reserved; this request may need up to {tokens:,}). It resets at {_describe_reset(resets)}.",
        period=period,
        resets_at=resets.isoformat(),
    )


def admit(
    user: User,
    model: ModelConfig,
    *,
    purpose: str,
    prompt_tokens: int,
    max_tokens: int,
    conversation: Conversation | None = None,
    message: Message | None = None,
    api_key: ApiKey | None = None,
    limits: Limits | None = None,
) -> UsageRecord:
    """Reserve the worst case of one upstream call against every limit, or refuse.

    The reservation is taken from the day and month counters, one request from the minute's,
    one stream from the running ones — in one conditional statement — and the call's ledger
    row is inserted as ``reserved``. Refused: a :class:`ChatError` saying what was exceeded
    and when it resets, and nothing is kept. Call it inside the caller's transaction.
    """
    limits = check_may_use(user, model, limits)
    if limits.max_output_tokens is not None and max_tokens > limits.max_output_tokens:
        raise InvalidParameter(
            f"max_tokens may be at most {limits.max_output_tokens} under your limits.",
            param="max_tokens",
        )
    periods = periods_at(timezone.now())
    reserved = math.ceil(prompt_tokens * PROMPT_PADDING) + PROMPT_SLACK + max_tokens
    amounts: list[tuple[str, datetime, int, int | None]] = [
        ("day", periods.day, reserved, limits.tokens_per_day),
        ("month", periods.month, reserved, limits.tokens_per_month),
        ("streams", STREAMS_EPOCH, 1, limits.concurrent_streams),
    ]
    if limits.requests_per_minute is not None:
        amounts.append(("minute", periods.minute, 1, limits.requests_per_minute))
    with transaction.atomic():
        failed = {period for period, *_ in amounts} - _reserve(user, amounts)
        if failed:
            transaction.set_rollback(True)
    if failed:
        raise _refusal(user, limits, periods, failed, reserved)
    return UsageRecord.objects.create(
        user=user,
        model=model,
        purpose=purpose,
        conversation=conversation,
        message=message,
        api_key=api_key,
        state=UsageRecord.State.RESERVED,
        reserved_tokens=reserved,
        day_start=periods.day,
        month_start=periods.month,
        holds_stream=True,
        # Kept as the estimate until the provider's usage replaces it.
        prompt_tokens=prompt_tokens,
        cache_miss_tokens=prompt_tokens,
    )


def price_on(model: ModelConfig, day: date) -> tuple[Decimal, Decimal, Decimal]:
    """(cache hit, cache miss, output) USD per 1M tokens in force on ``day``."""
    price = model.prices.filter(effective_from__lte=day).order_by("-effective_from").first()
    if price is None:
        return model.price_input_cache_hit, model.price_input_cache_miss, model.price_output
    return price.input_cache_hit, price.input_cache_miss, price.output


def cost_of(model: ModelConfig, counts: Counts, day: date | None = None) -> Decimal:
    hit, miss, output = price_on(model, day or timezone.localdate())
    return (
        counts.cache_hit * hit + counts.cache_miss * miss + counts.completion * output
    ) / MILLION


def settle(
    record_id: int, *, outcome: str, usage: Mapping[str, Any] | None, output_text: str = ""
) -> bool:
    """Settle a reservation to what the call used, once; False if it was already settled.

    Without the provider's usage (cancelled, cut off) the completion is estimated from the text
    received and the row is flagged ``estimated``. The counters give back what was reserved
    and not used, and the stream slot.
    """
    with transaction.atomic():
        record = (
            UsageRecord.objects.select_for_update(of=("self",))
            .select_related("model")
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
        UsageRecord.objects.filter(pk=record_id).update(
            state=UsageRecord.State.SETTLED,
            outcome=outcome,
            reserved_tokens=0,
            prompt_tokens=counts.prompt,
            cache_hit_tokens=counts.cache_hit,
            cache_miss_tokens=counts.cache_miss,
            completion_tokens=counts.completion,
            reasoning_tokens=counts.reasoning,
            total_tokens=counts.total,
            cost=cost_of(record.model, counts, timezone.localdate(record.created_at)),
            estimated=counts.estimated,
            settled_at=timezone.now(),
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "WITH locked AS MATERIALIZED (SELECT id FROM conversations_usagecounter "
                "WHERE user_id = %s AND ((period = 'day' AND start = %s) OR "
                "(period = 'month' AND start = %s) OR (period = 'streams' AND %s)) "
                "ORDER BY id FOR UPDATE) "
                "UPDATE conversations_usagecounter SET used = used + CASE WHEN period = 'streams' "
                "THEN -1 ELSE %s END WHERE id IN (SELECT id FROM locked)",
                [
                    record.user_id,
                    record.day_start,
                    record.month_start,
                    record.holds_stream,
                    counts.total - record.reserved_tokens,
                ],
            )
    return True


def usage_summary(user: User, limits: Limits | None = None) -> dict[str, Any]:
    """Today's and this month's tokens (used or reserved), the limits, and reset times."""
    limits = limits or limits_for(user)
    periods = periods_at(timezone.now())
    used = _counter_values(user, periods)

    def left(cap: int | None, spent: int) -> int | None:
        return None if cap is None else max(0, cap - spent)

    day_left = left(limits.tokens_per_day, used.get("day", 0))
    month_left = left(limits.tokens_per_month, used.get("month", 0))
    known = [value for value in (day_left, month_left) if value is not None]
    return {
        "today": {
            "used": used.get("day", 0),
            "limit": limits.tokens_per_day,
            "left": day_left,
            "resets_at": periods.next_day.isoformat(),
        },
        "month": {
            "used": used.get("month", 0),
            "limit": limits.tokens_per_month,
            "left": month_left,
            "resets_at": periods.next_month.isoformat(),
        },
        "remaining": min(known) if known else None,
        "max_output_tokens": limits.max_output_tokens,
        "requests_per_minute": limits.requests_per_minute,
        "concurrent_streams": limits.concurrent_streams,
        "suspended": limits.suspended,
        "source": limits.source,
    }


def remaining_tokens(user: User) -> int | None:
    """Tokens the user may still spend now (the tighter of day and month); None: unlimited."""
    remaining: int | None = usage_summary(user)["remaining"]
    return remaining


def reserved_for_message(message_id: object) -> Q:
    return Q(message_id=message_id, state=UsageRecord.State.RESERVED)
