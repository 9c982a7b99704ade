"""Personal API keys and the calls made with them: the rules behind the DeepSeek-compatible API.

A key is ``sk-team-`` plus 40 URL-safe random characters, shown once and stored as the SHA-256
of the whole key: keys carry ~240 bits of entropy, so a fast hash is right (a slow KDF would
only add latency to every call) and the lookup by hash is constant-time by construction.

A call made with a key is three steps, each one database unit of work:
:func:`start_call` (authenticate, resolve the model, validate, admit through ``quota``),
the upstream call (in ``api``), and :func:`finish_call` (settle through ``quota`` exactly once,
and record the exchange as a conversation when the key has ``save_history``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from conversations import api_wire, quota
from conversations.errors import ChatError, InvalidParameter, ModelNotAllowed, NotFound
from conversations.models import (
    ApiKey,
    AuditEntry,
    Conversation,
    Message,
    ModelConfig,
    UsageRecord,
    User,
)
from conversations.upstream import ChatResult, ModelTarget

KEY_PREFIX = "sk-team-"
KEY_RANDOM_CHARS = 40
KEY_PATTERN = re.compile(r"^sk-team-[A-Za-z0-9_-]{40}$")
SHOWN_PREFIX_CHARS = 12  # "sk-team-" and four random characters: enough to recognise a key
MAX_NAME_CHARS = 100
# last_used_at is a hint for people, not an audit trail: one write a minute per key at most.
LAST_USED_GRANULARITY = timedelta(minutes=1)
HISTORY_TITLE_CHARS = 60


class InvalidKey(ChatError):
    """The key is missing, malformed, unknown, revoked or expired, or its user may not sign in."""

    code = "invalid_api_key"
    status = 401
    default_message = "Authentication Fails (auth header format should be Bearer sk-...)"


class ApiAccessDenied(ChatError):
    code = "api_access_denied"
    status = 403
    default_message = "API access is not enabled for your account."


# --- keys --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewKey:
    """A freshly created key: the row, and the secret, which exists nowhere else after this."""

    key: ApiKey
    secret: str


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_secret() -> str:
    # 30 random bytes are exactly 40 URL-safe base64 characters, without padding.
    return KEY_PREFIX + secrets.token_urlsafe(30)


def check_key_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameter("Give the key a name.", param="name")
    name = name.strip()
    if len(name) > MAX_NAME_CHARS:
        raise InvalidParameter(
            f"The name may be at most {MAX_NAME_CHARS} characters.", param="name"
        )
    return name


def create_key(
    user: User,
    *,
    name: Any,
    expires_at: datetime | None = None,
    save_history: bool = False,
    actor: User | None = None,
) -> NewKey:
    """Create a key for ``user``; the secret is returned once and only its hash is kept."""
    name = check_key_name(name)
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidParameter("The expiry date must be in the future.", param="expires_at")
    secret = generate_secret()
    with transaction.atomic():
        key = ApiKey.objects.create(
            user=user,
            name=name,
            prefix=secret[:SHOWN_PREFIX_CHARS],
            hashed=hash_key(secret),
            expires_at=expires_at,
            save_history=save_history,
        )
        _audit(actor or user, "api_key.create", key, after={"name": name, "user": user.pk})
    return NewKey(key=key, secret=secret)


def keys_of(user: User) -> QuerySet[ApiKey]:
    """The user's keys, newest first (revoked ones included, to show when they were revoked)."""
    return ApiKey.objects.filter(user=user).order_by("-created_at")


def access_key(user: User, key_id: Any) -> ApiKey:
    """One of ``user``'s own keys; another user's key and a missing one are the same 404."""
    try:
        return ApiKey.objects.get(pk=int(key_id), user=user)
    except (ValueError, TypeError, ApiKey.DoesNotExist):
        raise NotFound("No such key.") from None


def revoke_key(key: ApiKey, actor: User | None) -> bool:
    """Revoke ``key`` now (its owner or staff); False if it was already revoked."""
    now = timezone.now()
    with transaction.atomic():
        # Conditional, so that two revocations never both write (nor both audit).
        revoked = bool(
            ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now)
        )
        if revoked:
            key.revoked_at = now
            _audit(actor, "api_key.revoke", key, before={"revoked_at": None})
    return revoked


def set_save_history(key: ApiKey, save_history: bool) -> None:
    """Whether calls made with ``key`` from now on are recorded as conversations."""
    ApiKey.objects.filter(pk=key.pk).update(save_history=save_history)
    key.save_history = save_history


def _audit(
    actor: User | None,
    action: str,
    key: ApiKey,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    AuditEntry.objects.create(
        actor=actor,
        action=action,
        target_type="api_key",
        target_id=str(key.pk),
        target_repr=str(key)[:200],
        before=before,
        after=after,
    )


def authenticate(secret: str) -> ApiKey:
    """The live key behind ``secret`` with its user loaded, or :class:`InvalidKey`.

    Unknown, revoked and expired keys and inactive or suspended users all get the same
    answer, which echoes only the key's last four characters (as DeepSeek does).
    """
    refused = InvalidKey(f"Authentication Fails, Your api key: ****{secret[-4:]} is invalid")
    if not KEY_PATTERN.match(secret):
        raise refused
    hashed = hash_key(secret)
    key = ApiKey.objects.select_related("user", "user__limits").filter(hashed=hashed).first()
    if key is None or not hmac.compare_digest(key.hashed, hashed):
        raise refused
    now = timezone.now()
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        raise refused
    user = key.user
    if not user.is_active or _is_suspended(user):
        raise refused
    if key.last_used_at is None or key.last_used_at < now - LAST_USED_GRANULARITY:
        # Conditional, so concurrent calls of one key write at most once a minute between them.
        ApiKey.objects.filter(pk=key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_GRANULARITY)
        ).update(last_used_at=now)
        key.last_used_at = now
    return key


def _is_suspended(user: User) -> bool:
    try:
        return bool(user.limits.suspended)  # type: ignore[attr-defined]
    except ObjectDoesNotExist:
        return False


# --- what a key's user may do ------------------------------------------------------------------


def _check_api_access(limits: quota.Limits) -> None:
    if not limits.api_access:
        raise ApiAccessDenied()


def usable_models(limits: quota.Limits) -> list[ModelConfig]:
    models = ModelConfig.objects.filter(enabled=True).order_by("sort_order", "name")
    if limits.allowed_model_ids is not None:
        models = models.filter(pk__in=limits.allowed_model_ids)
    return list(models)


def list_models(secret: str) -> list[str]:
    """The registry names the key's user may call."""
    key = authenticate(secret)
    limits = quota.limits_for(key.user)
    _check_api_access(limits)
    return [model.name for model in usable_models(limits)]


@dataclass(frozen=True)
class Balance:
    available: bool
    remaining_tokens: int | None  # None: no token limit applies


def balance_of(secret: str) -> Balance:
    """The user's remaining token allowance (the tightest of their day and month limits)."""
    key = authenticate(secret)
    limits = quota.limits_for(key.user)
    remaining = quota.remaining_tokens(key.user)
    available = limits.api_access and (remaining is None or remaining > 0)
    return Balance(available=available, remaining_tokens=remaining)


# --- one call --------------------------------------------------------------------------------


@dataclass
class Call:
    """An admitted call: what to send upstream, and what settlement needs afterwards."""

    record_id: int
    user_id: int
    key_id: int
    model_id: int
    model_name: str
    fingerprint: str
    target: ModelTarget
    request: api_wire.ChatRequest
    save_history: bool
    settled: bool = field(default=False)


def start_call(secret: str, body: Any) -> Call:
    """Authenticate, resolve the model, validate the request and admit it, or raise.

    ``body`` is the parsed JSON, or the :class:`ChatError` parsing it raised: a caller with a
    bad key hears about the key first, whatever the body.
    """
    key = authenticate(secret)
    if isinstance(body, ChatError):
        raise body
    user = key.user
    limits = quota.limits_for(user)
    _check_api_access(limits)
    model = _resolve_model(api_wire.requested_model(body), limits)
    request = api_wire.parse_chat_request(body, model, max_tokens_cap=limits.max_output_tokens)
    with transaction.atomic():
        record = quota.admit(
            user,
            model,
            purpose=UsageRecord.Purpose.API,
            prompt_tokens=quota.estimate_prompt_tokens(request.messages),
            max_tokens=request.max_tokens,
            api_key=key,
            limits=limits,
        )
    thinking = model.thinking if request.thinking is None else request.thinking
    return Call(
        record_id=record.pk,
        user_id=user.pk,
        key_id=key.pk,
        model_id=model.pk,
        model_name=model.name,
        fingerprint=api_wire.fingerprint_of(model),
        target=ModelTarget(
            upstream_model=model.upstream_model,
            thinking=thinking,
            reasoning_passback=model.reasoning_passback,  # type: ignore[arg-type]
        ),
        request=request,
        save_history=key.save_history,
    )


def _resolve_model(name: str, limits: quota.Limits) -> ModelConfig:
    model = ModelConfig.objects.filter(name=name, enabled=True).first()
    if model is None:
        # DeepSeek's own words for an unknown id; a disabled model is as unknown to callers.
        raise InvalidParameter("Model Not Exist", param="model")
    if limits.allowed_model_ids is not None and model.pk not in limits.allowed_model_ids:
        raise ModelNotAllowed(
            f"Your account may not use the model {model.name}; GET /models lists the ones "
            "you may use.",
            param="model",
        )
    return model


def finish_call(call: Call, *, outcome: str, result: ChatResult | None) -> None:
    """Settle the call's reservation exactly once, and save the exchange if the key asks to.

    ``result`` is what the upstream produced (complete or partial); without its usage the
    completion is estimated from the text received.
    """
    if call.settled:
        return
    call.settled = True
    usage = result.usage if result is not None else None
    text = (result.text + result.reasoning) if result is not None else ""
    if not (call.save_history and result is not None and outcome == "complete"):
        quota.settle(call.record_id, outcome=outcome, usage=usage, output_text=text)
        return
    with transaction.atomic():
        quota.settle(call.record_id, outcome=outcome, usage=usage, output_text=text)
        _save_history(call, result)


def _save_history(call: Call, result: ChatResult) -> None:
    """The request's messages and the reply as a new conversation in the user's list."""
    messages = call.request.messages
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    first_user = next((m["content"] for m in messages if m["role"] == "user"), "")
    title = " ".join(first_user.split())[:HISTORY_TITLE_CHARS] or "API call"
    conversation = Conversation.objects.create(
        owner_id=call.user_id,
        model_id=call.model_id,
        title=title,
        system_prompt=system,
        params=call.request.history_params(),
    )
    parent: Message | None = None
    for message in messages:
        if message["role"] == "system":
            continue
        parent = Message.objects.create(
            conversation=conversation,
            parent=parent,
            role=message["role"],
            author_id=call.user_id if message["role"] == "user" else None,
            model_id=call.model_id if message["role"] == "assistant" else None,
            content=message.get("content") or "",
            reasoning=message.get("reasoning_content") or "",
            tool_calls=message.get("tool_calls") or None,
            tool_call_id=message.get("tool_call_id") or "",
        )
    reply = Message.objects.create(
        conversation=conversation,
        parent=parent,
        role=Message.Role.ASSISTANT,
        model_id=call.model_id,
        content=result.text,
        reasoning=result.reasoning,
        tool_calls=[c.as_message_dict() for c in result.tool_calls] or None,
        finish_reason=result.finish_reason or "",
        usage=result.usage,
        status=Message.Status.COMPLETE,
    )
    UsageRecord.objects.filter(pk=call.record_id).update(conversation=conversation, message=reply)
