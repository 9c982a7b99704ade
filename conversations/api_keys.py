"""Personal API keys and the calls made with them: the rules behind the DeepSeek-compatible API.

A key is ``sk-team-`` plus 40 URL-safe random characters, shown once and stored as the SHA-256
of the whole key: keys carry ~240 bits of entropy, so a fast hash is right (a slow KDF would
only add latency to every call) and the lookup by hash is constant-time by construction.

The calls made with a key are served by ``api_asgi`` with the async units of work of
``api_calls`` (authentication, limits and admission in raw SQL); what stays here is the ORM
side: managing keys, and :func:`save_to_history`, the rarer path that records a settled call
as a conversation in one transaction, when the key has ``save_history``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DatabaseError, transaction
from django.utils import timezone

from conversations import api_wire, audit, sharing
from conversations.errors import ChatError, Conflict, InvalidParameter, NotFound
from conversations.models import (
    ApiKey,
    Conversation,
    Message,
    UsageRecord,
    User,
    live,
    store_chain,
)
from conversations.text import storable
from conversations.upstream import ChatResult, ModelTarget

logger = logging.getLogger(__name__)

KEY_PREFIX = "sk-team-"
KEY_RANDOM_CHARS = 40
KEY_PATTERN = re.compile(r"^sk-team-[A-Za-z0-9_-]{40}$")
SHOWN_PREFIX_CHARS = 12  # "sk-team-" and four random characters: enough to recognise a key
MAX_NAME_CHARS = 100
HISTORY_TITLE_CHARS = 60
#: Live (neither revoked nor expired) keys one account may hold, and the ended keys its keys
#: page lists besides (the admin lists them all).
MAX_LIVE_KEYS = 50
ENDED_KEYS_SHOWN = 20


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
    actor: audit.Actor = None,
) -> NewKey:
    """Create a key for ``user``; the secret is returned once and only its hash is kept.
    ``actor``: who made it, if not the user (staff, or a command by its name)."""
    name = check_key_name(name)
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidParameter("The expiry date must be in the future.", param="expires_at")
    secret = generate_secret()
    with transaction.atomic():
        # Counted with the account's row locked: two creations at once cannot both take the
        # last place.
        User.objects.select_for_update().filter(pk=user.pk).exists()
        if live(ApiKey.objects.filter(user=user)).count() >= MAX_LIVE_KEYS:
            raise Conflict(
                f"You have {MAX_LIVE_KEYS} live keys, the most one account may hold: revoke one "
                "you no longer use first."
            )
        key = ApiKey.objects.create(
            user=user,
            name=name,
            prefix=secret[:SHOWN_PREFIX_CHARS],
            hashed=hash_key(secret),
            expires_at=expires_at,
            save_history=save_history,
        )
        audit.record(actor or user, "create", key, None, audit.snapshot(key))
    return NewKey(key=key, secret=secret)


def keys_of(user: User) -> list[ApiKey]:
    """The user's live keys, then the :data:`ENDED_KEYS_SHOWN` that ended last (revoked or
    expired, to show when), newest first in each."""
    keys = ApiKey.objects.filter(user=user).order_by("-created_at")
    live_keys = list(live(keys))
    ended = keys.exclude(pk__in=[key.pk for key in live_keys])
    return live_keys + list(ended[:ENDED_KEYS_SHOWN])


def access_key(user: User, key_id: Any) -> ApiKey:
    """One of ``user``'s own keys; another user's key and a missing one are the same 404."""
    try:
        return ApiKey.objects.get(pk=int(key_id), user=user)
    except (ValueError, TypeError, ApiKey.DoesNotExist):
        raise NotFound("No such key.") from None


def revoke_key(key: ApiKey, actor: User | None) -> bool:
    """Revoke ``key`` now (its owner, or staff from the admin); False if it was already
    revoked. Audited with the key's before and after, as every change in the admin is."""
    with transaction.atomic():
        # Locked and re-read: of two revocations at once, the second finds the key revoked
        # and neither writes it again nor audits it again.
        stored = ApiKey.objects.select_for_update().filter(pk=key.pk, revoked_at__isnull=True)
        row = stored.first()
        if row is None:
            return False
        before = audit.snapshot(row)
        row.revoked_at = key.revoked_at = timezone.now()
        row.save(update_fields=["revoked_at"])
        audit.record(actor, "revoke", row, before, audit.snapshot(row))
    return True


def set_save_history(key: ApiKey, save_history: bool, actor: User | None = None) -> None:
    """Whether calls made with ``key`` from now on are recorded as conversations (audited)."""
    key.save_history = save_history
    with transaction.atomic():
        row = ApiKey.objects.select_for_update().filter(pk=key.pk).first()
        if row is None or row.save_history == save_history:
            return
        before = audit.snapshot(row)
        row.save_history = save_history
        row.save(update_fields=["save_history"])
        audit.record(actor, "change", row, before, audit.snapshot(row))


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


def save_to_history(call: Call, result: ChatResult) -> None:
    """Record a call that completed, and that ``api_calls`` has settled, as a conversation
    (for keys with ``save_history``).

    The settlement commits on its own first: the call is charged whatever happens to the
    copy. A copy that cannot be stored (text PostgreSQL cannot hold, a field too long) is
    logged and skipped; the client has its answer and its charge either way."""
    try:
        with transaction.atomic():
            _save_history(call, result)
    except (DatabaseError, ValueError) as error:
        logger.warning(
            "API call %s was not saved to its user's history: %s",
            call.record_id,
            type(error).__name__,
        )


def _save_history(call: Call, result: ChatResult) -> None:
    """The request's messages and the reply as a new conversation in the user's list."""
    messages = call.request.messages
    system = storable("\n\n".join(m["content"] for m in messages if m["role"] == "system"))
    first_user = next((m["content"] for m in messages if m["role"] == "user"), "")
    title = storable(" ".join(first_user.split()))[:HISTORY_TITLE_CHARS] or "API call"
    conversation = Conversation.objects.create(
        owner_id=call.user_id,
        model_id=call.model_id,
        title=title,
        system_prompt=system,
        params=call.request.history_params(),
    )
    copied = [
        Message(
            conversation=conversation,
            role=message["role"],
            author_id=call.user_id if message["role"] == "user" else None,
            model_id=call.model_id if message["role"] == "assistant" else None,
            content=storable(message.get("content") or ""),
            reasoning=storable(message.get("reasoning_content") or ""),
            tool_calls=message.get("tool_calls") or None,
            tool_call_id=message.get("tool_call_id") or "",
        )
        for message in messages
        if message["role"] != "system"
    ]
    reply = Message(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        model_id=call.model_id,
        content=storable(result.text),
        reasoning=storable(result.reasoning),
        tool_calls=[c.as_message_dict() for c in result.tool_calls] or None,
        finish_reason=result.finish_reason or "",
        usage=result.usage,
        status=Message.Status.COMPLETE,
        # As a chat reply keeps what it was asked with (JSON mode: drawn as JSON).
        params=call.request.history_params(),
    )
    store_chain([*copied, reply])  # a few statements, whatever the number of messages
    UsageRecord.objects.filter(pk=call.record_id).update(conversation=conversation, message=reply)
    sharing.announce_listed(conversation)  # the owner's open tabs list it
