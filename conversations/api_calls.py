"""The API's units of database work, async and in raw SQL: one round trip each on the hot path.

A chat completion made with a key is:

1. :func:`start_call` — the request is validated (``api_wire``) against the requested model's
   registry row, kept in this process (:data:`_registry`); then ONE statement
   (:data:`START_SQL`) authenticates the key (refreshing its ``last_used_at`` at most once a
   minute), reads the model's current row and admits the call through ``quota``'s own SQL
   function (``usage_admit``: the user active and not suspended, API access, the model allowed
   and enabled, ``max_tokens`` within the cap, every limit). The row read back is compared
   with the one the request was checked against: a model changed meanwhile is checked again;
2. the upstream call (``api_asgi``);
3. :func:`finish_call` — settled through ``quota`` exactly once, also when the client left,
   and also when the database is away meanwhile: the provider's usage is only in this
   process's memory, so the settlement waits the outage out (``pgpool.outlasting_outage``).
   An answer is settled right after its last byte has gone out (:func:`answer_then_settle`),
   not before: the client does not wait for the commit. Until then the call's reservation
   stands, so a limit is never overshot; a balance read in this process waits for the
   settlements of the answers it follows.

A request that fails validation, or names no usable model, first authenticates the key
(:func:`authorize`, :data:`AUTHORIZE_SQL`): a caller with a bad key hears about the key first,
then about API access and the model, then about the body, as DeepSeek answers. The models and
balance endpoints authenticate the same way.

:func:`finish_call` runs ``quota.SETTLE_OWN_SQL`` on the API's asyncio pool, so the API and the
chat share one accounting path. A call whose key saves history is then recorded as a conversation
through the ORM, in one transaction on a thread.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from conversations import api_keys, api_wire, pgpool, quota
from conversations.api_keys import ApiAccessDenied, Call, InvalidKey
from conversations.asyncdb import in_db_thread
from conversations.errors import (
    ChatError,
    InvalidParameter,
    ModelNotAllowed,
    QuotaExceeded,
    TooManyStreams,
)
from conversations.models import ModelConfig, UsageRecord, User
from conversations.upstream import ChatResult, ModelTarget

logger = logging.getLogger(__name__)

# The key (live, its user active and not suspended), the user's effective limits and the
# requested model (NULL columns when it does not exist or is disabled), in one statement. The
# limits are quota's own (the SQL function usage_limits, which admission uses too).
# No row at all: the key is unknown, revoked or expired, or its user may not use it.
AUTHORIZE_SQL = """
WITH model AS (
    SELECT m.id, m.name, m.upstream_model, m.thinking, m.reasoning_passback, m.supports_tools,
        m.supports_json, m.supports_logprobs, m.context_window, m.max_output_tokens,
        m.default_max_tokens, m.sort_order
    FROM conversations_modelconfig m
    WHERE m.name = %(model)s AND m.enabled
),
key AS (
    SELECT k.id, k.user_id, k.hashed, k.save_history, lim.api_access, lim.model_allowed,
        lim.tokens_per_day, lim.tokens_per_month, lim.max_output_tokens,
        lim.requests_per_minute, lim.concurrent_streams
    FROM conversations_apikey k
    LEFT JOIN model ON true
    CROSS JOIN LATERAL usage_limits(k.user_id, model.id) lim
    WHERE k.hashed = %(hashed)s AND k.revoked_at IS NULL
        AND (k.expires_at IS NULL OR k.expires_at > now())
        AND lim.is_active AND NOT lim.suspended
),
touched AS (
    UPDATE conversations_apikey SET last_used_at = now()
    WHERE id = (SELECT id FROM key)
        AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
)
SELECT key.*, model.* FROM key LEFT JOIN model ON true
"""

USABLE_MODELS_SQL = """
SELECT m.name FROM conversations_modelconfig m
CROSS JOIN LATERAL usage_limits(%(user_id)s, m.id) lim
WHERE m.enabled AND lim.model_allowed
ORDER BY m.sort_order, m.name
"""

# The key (live), its refreshed last use, the model's current row and the admission of the
# call, in one statement. No row: the key is unknown, revoked or expired. Model columns NULL:
# the model is gone (admission then refused it: nothing is reserved).
START_SQL = """
WITH key AS (
    SELECT k.id, k.user_id, k.hashed, k.save_history
    FROM conversations_apikey k
    WHERE k.hashed = %s AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > %s)
),
touched AS (
    UPDATE conversations_apikey SET last_used_at = %s
    WHERE id = (SELECT id FROM key)
        AND (last_used_at IS NULL OR last_used_at < %s - interval '1 minute')
),
model AS (
    SELECT m.enabled, m.id, m.name, m.upstream_model, m.thinking, m.reasoning_passback,
        m.supports_tools, m.supports_json, m.supports_logprobs, m.context_window,
        m.max_output_tokens, m.default_max_tokens, m.sort_order
    FROM conversations_modelconfig m
    WHERE m.id = %s
)
SELECT key.id, key.user_id, key.hashed, key.save_history, admission.*, model.*
FROM key
LEFT JOIN model ON true
CROSS JOIN LATERAL usage_admit(
    key.user_id, %s::bigint, %s::text, %s::integer, %s::integer, %s::integer, NULL::uuid,
    NULL::uuid, key.id, true, %s::timestamptz, %s::timestamptz, %s::timestamptz,
    %s::timestamptz
) AS admission
"""

MODEL_SQL = """
SELECT m.id, m.name, m.upstream_model, m.thinking, m.reasoning_passback, m.supports_tools,
    m.supports_json, m.supports_logprobs, m.context_window, m.max_output_tokens,
    m.default_max_tokens, m.sort_order
FROM conversations_modelconfig m
WHERE m.name = %s AND m.enabled
"""

_MODEL_FIELDS = (
    "id",
    "name",
    "upstream_model",
    "thinking",
    "reasoning_passback",
    "supports_tools",
    "supports_json",
    "supports_logprobs",
    "context_window",
    "max_output_tokens",
    "default_max_tokens",
    "sort_order",
)
_KEY_COLUMNS = 11  # the columns before the model's


@dataclass(frozen=True, slots=True)
class Authorized:
    """A live key, its user's effective limits, and the model the request named (if any)."""

    key_id: int
    user_id: int
    save_history: bool
    limits: quota.Limits
    model: ModelConfig | None
    model_allowed: bool  # the named model, by the user's policy


# Registry rows as model instances, built once per distinct row (the registry is small).
_model_cache: dict[tuple[Any, ...], ModelConfig] = {}


def _model_of(values: tuple[Any, ...]) -> ModelConfig | None:
    if values[0] is None:
        return None
    model = _model_cache.get(values)
    if model is None:
        if len(_model_cache) > 256:
            _model_cache.clear()
        model = ModelConfig(enabled=True, **dict(zip(_MODEL_FIELDS, values, strict=True)))
        _model_cache[values] = model
    return model


def _refused(secret: str, why: str = "is invalid") -> InvalidKey:
    return InvalidKey(f"Authentication Fails, Your api key: ****{secret[-4:]} {why}")


# Why a key that exists is not live (run only when authentication has failed).
WHY_REFUSED_SQL = """
SELECT k.revoked_at IS NOT NULL, k.expires_at IS NOT NULL AND k.expires_at <= now(),
    lim.is_active, lim.suspended
FROM conversations_apikey k
CROSS JOIN LATERAL usage_limits(k.user_id, NULL) lim
WHERE k.hashed = %s
"""


async def _refusal(secret: str, hashed: str) -> InvalidKey:
    """The 401 for a key that did not authenticate, saying why to whoever holds it: revoked,
    expired, or its account suspended (they could not tell a key of theirs that stopped
    working from a typo); unknown keys and inactive accounts are "invalid". Only the key's
    last four characters are echoed, as DeepSeek does."""
    row = await pgpool.fetch_one(WHY_REFUSED_SQL, (hashed,))
    if row is None or not row[2]:
        return _refused(secret)
    revoked, expired, _, suspended = row
    if revoked:
        return _refused(secret, "has been revoked")
    if expired:
        return _refused(secret, "has expired")
    if suspended:
        return _refused(secret, "belongs to a suspended account; ask your administrator")
    return _refused(secret)


async def authorize(secret: str, model_name: str | None = None) -> Authorized:
    """The live key behind ``secret`` with its user's limits, or :class:`InvalidKey`.

    Unknown, revoked and expired keys and inactive or suspended users are all a 401, which
    echoes only the key's last four characters (as DeepSeek does) and says why
    (:func:`_refusal`).
    """
    if not api_keys.KEY_PATTERN.match(secret):
        raise _refused(secret)
    hashed = api_keys.hash_key(secret)
    row = await pgpool.fetch_one(AUTHORIZE_SQL, {"hashed": hashed, "model": model_name})
    # The lookup is by hash (no timing signal about the secret); compared again in constant
    # time all the same.
    if row is None or not hmac.compare_digest(row[2], hashed):
        raise await _refusal(secret, hashed)
    limits = quota.Limits(
        tokens_per_day=row[6],
        tokens_per_month=row[7],
        max_output_tokens=row[8],
        requests_per_minute=row[9],
        concurrent_streams=row[10],
        api_access=row[4],
        source="api",
    )
    return Authorized(
        key_id=row[0],
        user_id=row[1],
        save_history=row[3],
        limits=limits,
        model=_model_of(row[_KEY_COLUMNS:]),
        model_allowed=row[5],
    )


def _check_api_access(limits: quota.Limits) -> None:
    if not limits.api_access:
        raise ApiAccessDenied()


async def usable_models(secret: str) -> list[str]:
    """The registry names the key's user may call; none at all is refused, saying why (an
    empty list said nothing: every model disabled, or none the user's policy allows)."""
    key = await authorize(secret)
    _check_api_access(key.limits)
    names = await _usable_model_names(key.user_id)
    if not names:
        raise await _no_model_available(key.user_id)
    return names


async def usable_model(secret: str, name: str) -> str | None:
    """The registry name ``name`` if the key's user may call it (the list's rule, for one
    model), else None: disabled, outside their policy and unknown alike. A user who may call
    no model at all is told why, as the list tells them (it names no model)."""
    # A name with a NUL character names no model (PostgreSQL text cannot hold it).
    key = await authorize(secret, None if "\x00" in name else name)
    _check_api_access(key.limits)
    if key.model is None or not key.model_allowed:
        if not await _usable_model_names(key.user_id):
            raise await _no_model_available(key.user_id)
        return None
    return key.model.name


async def _usable_model_names(user_id: int) -> list[str]:
    rows = await pgpool.fetch_all(USABLE_MODELS_SQL, {"user_id": user_id})
    return [row[0] for row in rows]


async def _no_model_available(user_id: int) -> ModelNotAllowed:
    reason = await in_db_thread(quota.no_model_available)(User(pk=user_id))
    return ModelNotAllowed(reason, param="model")


@dataclass(frozen=True, slots=True)
class Balance:
    available: bool
    remaining_tokens: int | None  # None: no token limit applies


async def balance_of(secret: str) -> Balance:
    """The user's remaining token allowance (the tightest of their day and month limits).
    Refused, as the models and completions are, when their policy turns API access off: the
    key is the API's, and it is not theirs to use."""
    key = await authorize(secret)
    _check_api_access(key.limits)
    await _answers_settled(key.user_id)
    summary = await in_db_thread(quota.usage_summary)(User(pk=key.user_id), key.limits)
    remaining: int | None = summary["remaining"]
    return Balance(available=remaining is None or remaining > 0, remaining_tokens=remaining)


def _requested_model_name(body: Any) -> str | None:
    """The name to look up in the registry; None when there is none to look up. A name with
    a NUL character names no model (and PostgreSQL text cannot even be compared with it)."""
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) and "\x00" not in model else None


async def start_call(secret: str, body: Any) -> Call:
    """Authenticate, resolve the model, validate the request and admit it, or raise.

    ``body`` is the parsed JSON, or the :class:`ChatError` parsing it raised. A valid request
    costs one statement (:data:`START_SQL`); any other takes :func:`_start_checked`, which
    says what is wrong in DeepSeek's order (the key first, whatever the body).
    """
    if not api_keys.KEY_PATTERN.match(secret):
        raise _refused(secret)
    checked = await _validated(body)
    if checked is None:
        return await _start_checked(secret, body)
    model, request = checked
    # A request without max_tokens gets the model's default within the user's cap: admission
    # knows the cap, and says what it reserved.
    asked = request.max_tokens if request.max_tokens_asked else None
    hashed = api_keys.hash_key(secret)
    params = quota.admission_params(
        0,
        model.pk,
        purpose=UsageRecord.Purpose.API,
        prompt_tokens=quota.estimate_prompt_tokens(request.messages, request.params.get("tools")),
        max_tokens=asked,
        api_key_id=0,
        check_api_access=True,
    )
    now, minute, day, month = params[10:]
    row = await pgpool.fetch_one(
        START_SQL, (hashed, now, now, now, model.pk, *params[1:6], now, minute, day, month)
    )
    # The lookup is by hash (no timing signal about the secret); compared again in constant
    # time all the same.
    if row is None or not hmac.compare_digest(row[2], hashed):
        raise await _refusal(secret, hashed)
    key_id, user_id, _, save_history = row[:4]
    admission = row[4:11]
    current = _remember(model, row[11], row[12:])
    if admission[0] != "admitted":
        # Refused (the user suspended, the model not allowed, a limit...): worded as the
        # checked path words it, in its order. Asked again once the user's answers this
        # process has sent are settled: a client that sends its next call as soon as it has
        # the last one's answer is not refused for that call's reservation or stream slot.
        await _answers_settled(user_id)
        return await _start_checked_past_settlements(secret, body, user_id)
    if current is not model:
        # The registry row changed since the request was checked against it.
        still_valid = await _validated(body)
        if still_valid is None or still_valid[0] is not current:
            await _release(admission[1])
            return await _start_checked(secret, body)
        model, request = still_valid
    record = quota.admission_result(
        admission,
        quota.admission_params(
            user_id,
            model.pk,
            purpose=UsageRecord.Purpose.API,
            prompt_tokens=int(params[3]),
            max_tokens=asked,
            api_key_id=key_id,
            check_api_access=True,
            now=now,
        ),
    )
    if asked is None:
        budget = quota.output_budget(record)
        request = replace(
            request, max_tokens=budget, params={**request.params, "max_tokens": budget}
        )
    return _call(record.pk, user_id, key_id, save_history, model, request)


# When a call refused for a limit another of the user's calls holds is asked again (seconds).
SETTLING_ELSEWHERE_WAITS_S = (0.025, 0.1, 0.25)

HOLDS_RESERVATIONS_SQL = (
    "SELECT EXISTS (SELECT 1 FROM conversations_usagerecord"
    " WHERE state = 'reserved' AND user_id = %s)"
)


# The users with a refused call being asked again in this process (one at a time each).
_asking_again: set[int] = set()


async def _start_checked_past_settlements(secret: str, body: Any, user_id: int) -> Call:
    """:func:`_start_checked`; a refusal for the user's tokens or streams while another of
    their calls is reserved is asked again a few times (``SETTLING_ELSEWHERE_WAITS_S``, 0.4 s
    in all). That call may be one another worker has answered and is settling, a millisecond
    or two after its answer: a client sending its next call on the heels of an answer, through
    a proxy that spreads calls over workers, is not refused for it. (This worker's own answers
    are waited for exactly: :func:`_answers_settled`.) A refusal that stands is only later.

    One refused call per user is asked again at a time in a process; the others are refused
    at once: a client flooding past its limit costs the database no more than before."""
    if user_id in _asking_again:
        return await _start_checked(secret, body)
    _asking_again.add(user_id)
    try:
        for wait in SETTLING_ELSEWHERE_WAITS_S:
            try:
                return await _start_checked(secret, body)
            except (QuotaExceeded, TooManyStreams):
                holds = await pgpool.fetch_one(HOLDS_RESERVATIONS_SQL, (user_id,))
                if not (holds and holds[0]):
                    raise
            await asyncio.sleep(wait)
        return await _start_checked(secret, body)
    finally:
        _asking_again.discard(user_id)


async def _start_checked(secret: str, body: Any) -> Call:
    """:func:`start_call` a statement at a time, each refusal in DeepSeek's order: the key,
    the body's JSON, API access, the body's shape, the model, its use by this user, the
    request's fields; then the admission (limits)."""
    key = await authorize(secret, _requested_model_name(body))
    if isinstance(body, ChatError):
        raise body
    limits = key.limits
    _check_api_access(limits)
    api_wire.requested_model(body)  # the body's shape and its model field
    model = key.model
    if (model is None or not key.model_allowed) and not await _usable_model_names(key.user_id):
        # No model to call at all: why (a disabled model was as unknown as a typo, and its
        # refusal pointed to a list of models that is empty).
        raise await _no_model_available(key.user_id)
    if model is None:
        # DeepSeek's own words for an unknown id; a disabled model is as unknown to callers.
        raise InvalidParameter("Model Not Exist", param="model")
    if not key.model_allowed:
        raise ModelNotAllowed(
            f"Your account may not use the model {model.name}; GET /models lists the ones "
            "you may use.",
            param="model",
        )
    request = api_wire.parse_chat_request(body, model, max_tokens_cap=limits.max_output_tokens)
    record_id = await admit(key, model, request)
    return _call(record_id, key.user_id, key.key_id, key.save_history, model, request)


def _call(
    record_id: int,
    user_id: int,
    key_id: int,
    save_history: bool,
    model: ModelConfig,
    request: api_wire.ChatRequest,
) -> Call:
    thinking = model.thinking if request.thinking is None else request.thinking
    return Call(
        record_id=record_id,
        user_id=user_id,
        key_id=key_id,
        model_id=model.pk,
        model_name=model.name,
        fingerprint=api_wire.fingerprint_of(model),
        target=ModelTarget(
            upstream_model=model.upstream_model,
            thinking=thinking,
            reasoning_passback=model.reasoning_passback,  # type: ignore[arg-type]
            name=model.name,
        ),
        request=request,
        save_history=save_history,
    )


# --- the registry, as this process last read it ------------------------------------------------

# Enabled models by name. Only ever a hint: START_SQL reads the current row of the model a
# request was checked against, and :func:`_remember` replaces what changed.
_registry: dict[str, ModelConfig] = {}


def _remember(
    checked: ModelConfig, enabled: bool | None, values: tuple[Any, ...]
) -> ModelConfig | None:
    """The current row of the model a request was checked against (None: gone or disabled);
    remembered in its place if it changed."""
    current = _model_of(values) if enabled else None
    if current is not checked:
        _registry.pop(checked.name, None)
        if current is not None:
            _registry[current.name] = current
    return current


async def _validated(body: Any) -> tuple[ModelConfig, api_wire.ChatRequest] | None:
    """The model the body names and the request checked against it; None if either is not
    right (no request is refused here: :func:`_start_checked` says why, in order)."""
    name = _requested_model_name(body)
    if name is None:
        return None
    model = _registry.get(name)
    if model is None:
        row = await pgpool.fetch_one(MODEL_SQL, (name,))
        if row is None:
            return None
        model = _model_of(row)
        assert model is not None
        _registry[name] = model
    try:
        return model, api_wire.parse_chat_request(body, model, max_tokens_cap=None)
    except ChatError:
        return None


async def _release(record_id: int) -> None:
    """Give back an admission whose call will not be made (nothing used)."""
    params = quota.settlement_params(record_id, outcome="failed", usage=quota.NOTHING_USED)
    # Lost, the reaper would charge the prompt estimate of a call never made.
    await pgpool.outlasting_outage(
        "release", lambda: pgpool.fetch_one(quota.SETTLE_OWN_SQL, params)
    )


# --- the seam to quota ---------------------------------------------------------------------------


async def admit(key: Authorized, model: ModelConfig, request: api_wire.ChatRequest) -> int:
    """Reserve the call's worst case through ``quota`` (one statement); the ledger row's id,
    or the ChatError saying what was exceeded."""
    params = quota.admission_params(
        key.user_id,
        model.pk,
        purpose=UsageRecord.Purpose.API,
        prompt_tokens=quota.estimate_prompt_tokens(request.messages, request.params.get("tools")),
        max_tokens=request.max_tokens,
        api_key_id=key.key_id,
        check_api_access=True,
    )
    row = await pgpool.fetch_one(quota.ADMIT_SQL, params)
    assert row is not None
    record_id: int = quota.admission_result(row, params).pk
    return record_id


_save_to_history = in_db_thread(api_keys.save_to_history)


async def finish_call(call: Call, *, outcome: str, result: ChatResult | None) -> None:
    """Settle the call exactly once (and save it as a conversation if its key asks to).

    ``result`` is what the upstream produced (complete or partial); without its usage the
    completion is estimated from the output received (``ChatResult.output_text``).
    """
    if call.settled:
        return
    call.settled = True  # at once: a second caller while this one runs does nothing
    try:
        params = quota.settlement_params(
            call.record_id,
            outcome=outcome,
            usage=result.usage if result is not None else None,
            output_text=result.output_text if result is not None else "",
            reasoning_text=result.reasoning if result is not None else "",
        )
        if call.save_history and result is not None and outcome == "complete":
            # The rare path: the settlement alone, then the conversation's rows on an ORM
            # thread, once (a reaper's release meanwhile does not stop it: the call is still
            # charged what it used).
            if await _settled_by_us(params):
                await _save_to_history(call, result)
            return
        await settle_in_group(call.user_id, params)
    except BaseException:
        # Not settled after all (the database went away): a later attempt may still do it,
        # and the reaper releases what none did.
        call.settled = False
        raise


# The answers of this process that have gone out (or are going) and are not settled yet, by
# user: what a balance read waits for, so that it counts what the answers it follows used.
_settling: dict[int, set[asyncio.Future[None]]] = {}


async def answer_then_settle(
    call: Call, result: ChatResult, send_answer: Callable[[], Awaitable[None]]
) -> None:
    """Send a completed call's answer (``send_answer``: its last bytes), then settle it.

    The client has its answer without waiting for the settlement's commit; the reservation
    holds until then (no later call of the user is admitted against tokens this one may
    have used). A balance read of the user in this process meanwhile waits for it, and so
    does a call of the user refused at admission before it is asked again. Settled also if
    sending fails (the client gone: it was answered all the same), and to its end if this is
    cancelled (a shutdown's deadline). A settlement that fails after the answer is logged,
    not raised: the client was told the call succeeded; the reaper releases the reservation."""
    settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    pending = _settling.setdefault(call.user_id, set())
    pending.add(settled)

    def done(_: object = None) -> None:
        if not settled.done():
            settled.set_result(None)
        pending.discard(settled)
        if not pending and _settling.get(call.user_id) is pending:
            del _settling[call.user_id]

    try:
        await send_answer()
    finally:
        if call.settled:
            done()
        else:
            settling = asyncio.ensure_future(finish_call(call, outcome="complete", result=result))
            settling.add_done_callback(done)
            try:
                await asyncio.shield(settling)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("API settlement after the answer failed")


async def _answers_settled(user_id: int) -> None:
    """Wait for the settlements of the user's answers this process has sent."""
    pending = _settling.get(user_id)
    if pending:
        await asyncio.wait(list(pending))


async def _settled_by_us(params: quota.SettlementParams) -> bool:
    """Settle one completed call (waiting out an outage); True once it is settled as this call
    says (:data:`quota.SETTLE_OWN_SQL`: also after a try whose answer was lost, and over a
    reaper's release made while this worker could not reach the database)."""

    async def settle() -> bool:
        row = await pgpool.fetch_one(quota.SETTLE_OWN_SQL, params)
        return bool(row and row[0])

    return await pgpool.outlasting_outage("settlement", settle)


async def settle_in_group(user_id: int, params: quota.SettlementParams) -> None:
    """Settle one call (``quota.settlement_params``) together with the others that end at the
    same time: one statement and one commit for all of them (see :class:`_Settlements`)."""
    await _settlements().settle(user_id, params)


# Settlements of many calls as ONE statement: each as quota.SETTLE_OWN_SQL's, over arrays, in
# user order (the order admissions and other batches lock users' rows in: no deadlock), one
# commit for all.
SETTLE_MANY_SQL = """
SELECT usage_settle_own(s.record_id, s.outcome, s.has_usage, s.prompt, s.cache_hit,
                        s.cache_miss, s.completion, s.reasoning, s.time_zone)
FROM unnest(%s::bigint[], %s::text[], %s::boolean[], %s::integer[], %s::integer[],
            %s::integer[], %s::integer[], %s::integer[], %s::text[])
     WITH ORDINALITY AS s(record_id, outcome, has_usage, prompt, cache_hit, cache_miss,
                          completion, reasoning, time_zone, position)
ORDER BY s.position
"""


class _Settlements:
    """Group commit of settlements: while one statement settles the calls that were waiting,
    the calls that end meanwhile wait for the next, and are settled together in one statement
    and one commit. A call alone is settled at once; each caller returns once its own
    settlement has committed."""

    def __init__(self) -> None:
        self.waiting: list[tuple[int, quota.SettlementParams, asyncio.Future[None]]] = []
        self.flushing: asyncio.Future[None] | None = None

    async def settle(self, user_id: int, params: quota.SettlementParams) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append((user_id, params, done))
        if self.flushing is None:
            self.flushing = asyncio.ensure_future(self._flush())
        await done

    async def _flush(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting, []
                try:
                    await self._run(batch)
                except Exception as error:  # handed to every caller of the batch
                    for _, _, done in batch:
                        if not done.done():
                            done.set_exception(error)
                else:
                    for _, _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            self.flushing = None

    @staticmethod
    async def _run(batch: list[tuple[int, quota.SettlementParams, asyncio.Future[None]]]) -> None:
        """The batch's statement, waiting out an outage (a try after a lost answer charges
        nothing twice: a call settled already is set to the same counts again)."""
        await pgpool.outlasting_outage("settlement", lambda: _Settlements._statement(batch))

    @staticmethod
    async def _statement(
        batch: list[tuple[int, quota.SettlementParams, asyncio.Future[None]]],
    ) -> None:
        if len(batch) == 1:
            await pgpool.fetch_one(quota.SETTLE_OWN_SQL, batch[0][1])
            return
        ordered = sorted(batch, key=lambda item: (item[0], int(item[1][0])))
        columns = list(zip(*(params for _, params, _ in ordered), strict=True))
        await pgpool.fetch_all(SETTLE_MANY_SQL, [list(column) for column in columns])


_settlers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Settlements] = (
    weakref.WeakKeyDictionary()
)


def _settlements() -> _Settlements:
    loop = asyncio.get_running_loop()
    settler = _settlers.get(loop)
    if settler is None:
        settler = _settlers[loop] = _Settlements()
    return settler
