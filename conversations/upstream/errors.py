"""The one error hierarchy of the upstream client.

Every failure of a call to DeepSeek is an :class:`UpstreamError` with

* ``code`` — a stable machine name (``"rate_limited"``, ``"upstream_stalled"``, …);
* ``http_status`` — the upstream's HTTP status when it answered with one, otherwise the
  status a gateway would answer for that failure (502, 503 or 504);
* ``message`` — text that is safe to show a user: it never contains the API key nor upstream
  internals, except for :class:`InvalidRequest` from a 400 or 422, whose message is the
  upstream's own explanation of what is wrong with the request, unless it shows anything of
  our key (:func:`explanation`);
* ``retryable`` — whether the failure is transient. The client retries only before the first
  delta; after that the error reaches the caller with ``partial`` set to what was received;
* ``detail`` — upstream detail for the log (redacted), never for the browser.
"""

from __future__ import annotations

import json
import re
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .events import ChatResult

_MAX_DETAIL = 500
REDACTED = "[redacted]"


def redact(text: str, secret: str) -> str:
    """Remove ``secret`` (the API key) from ``text`` and bound its length."""
    if secret:
        text = text.replace(secret, REDACTED)
    if len(text) > _MAX_DETAIL:
        text = text[:_MAX_DETAIL] + "…"
    return text


# What gives our key away in a provider's text besides the key itself: a key-shaped token
# ("sk-…", whole or shortened) or a masked echo of one (DeepSeek's "****abcd", OpenAI's
# "sk-ab****wxyz").
_KEY_SHAPED = re.compile(r"\bsk-[A-Za-z0-9_-]{2,}|\*{4,}")


def explanation(upstream_message: str, api_key: str) -> str | None:
    """The provider's explanation of a refused request, to pass on to whoever made it; None
    (the error's own message, then) when it shows anything of our key: the key, a key-shaped
    or masked token, or the key's first or last characters, which upstreams echo to say which
    key they mean. The text stays in the log's detail, where only the whole key is redacted."""
    if not upstream_message:
        return None
    if _KEY_SHAPED.search(upstream_message):
        return None
    if api_key and len(api_key) >= 12:
        core = api_key.removeprefix("sk-")
        if any(part in upstream_message for part in (api_key, core[:6], core[-4:])):
            return None
    return redact(upstream_message, api_key)


def renamed(text: str, upstream_model: str, name: str) -> str:
    """``text`` (a provider's explanation) naming the model ``name`` wherever it names it
    ``upstream_model``: whoever made the request knows the model by our name, and which
    upstream id serves it is the deployment's business. A longer id the upstream id begins or
    ends (``deepseek-chat-v2``) is left alone."""
    if not upstream_model or upstream_model not in text:
        return text
    pattern = rf"(?<![\w.-]){re.escape(upstream_model)}(?![\w-]|\.\w)"
    return re.sub(pattern, lambda _: name, text)


class UpstreamError(Exception):
    """Base class: a call to the upstream failed."""

    code: ClassVar[str] = "upstream_error"
    default_status: ClassVar[int] = 502
    default_message: ClassVar[str] = "The model provider failed to answer."
    retryable: ClassVar[bool] = False
    # False: the provider refused the call or never took it (an error status before any body,
    # no connection, closed while queued); it bills nothing, so neither do we.
    billed: ClassVar[bool] = True
    # True: only an administrator can mend it (our key, our balance, our registry), so it is
    # logged as an error, not as one more failed call.
    needs_admin: ClassVar[bool] = False

    def __init__(
        self,
        message: str | None = None,
        *,
        http_status: int | None = None,
        detail: str = "",
    ) -> None:
        self.message = message or self.default_message
        self.http_status = http_status if http_status is not None else self.default_status
        self.detail = detail
        # What had been received when the failure happened (streams and finish-reason errors).
        self.partial: ChatResult | None = None
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, http_status={self.http_status}, "
            f"message={self.message!r})"
        )


class AuthError(UpstreamError):
    """401: the upstream rejected the API key. The upstream's text echoes part of the key."""

    code = "upstream_auth_failed"
    billed = False
    needs_admin = True
    default_status = 401
    default_message = "The model provider rejected the server's API key."


class InsufficientBalance(UpstreamError):
    """402: the upstream account has no balance left."""

    code = "upstream_insufficient_balance"
    billed = False
    needs_admin = True
    default_status = 402
    default_message = "The model provider account has insufficient balance."


class InvalidRequest(UpstreamError):
    """400/422: the request is wrong; ``message`` is the upstream's explanation."""

    code = "invalid_request"
    billed = False
    default_status = 400
    default_message = "The model provider refused the request as invalid."


class UnknownModel(UpstreamError):
    """400 naming the model: the provider does not serve the registry's upstream id (a typo, a
    retired name). Our configuration is wrong, not the caller's request, so the caller is not
    told the provider's text (its model names) as if it had asked for something invalid; the
    log says what the provider answered, for the administrator."""

    code = "upstream_model_unknown"
    billed = False
    needs_admin = True
    default_status = 502
    default_message = (
        "The model provider does not know this model's upstream id; an administrator must "
        "correct it in the model registry."
    )


# What DeepSeek answers for an id it does not serve (deepseek-api.md §0 and §3): an unknown id,
# and a retired name ("The supported API model names are …, but you passed deepseek-chat.").
_UNKNOWN_MODEL = re.compile(r"^Model Not Exist\b|supported API model names .* but you passed ")


class RateLimited(UpstreamError):
    """429: too many requests or concurrency over the account's limit."""

    code = "rate_limited"
    billed = False
    default_status = 429
    default_message = "The model provider is rate limiting requests; try again shortly."
    retryable = True

    def __init__(
        self,
        message: str | None = None,
        *,
        http_status: int | None = None,
        detail: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status, detail=detail)
        self.retry_after = retry_after


class ServerError(UpstreamError):
    """500 and other 5xx answers (gateway pages included)."""

    code = "upstream_server_error"
    billed = False
    default_status = 500
    default_message = "The model provider had an internal error."
    retryable = True


class Overloaded(ServerError):
    """503: the upstream is overloaded."""

    code = "upstream_overloaded"
    default_status = 503
    default_message = "The model provider is overloaded; try again shortly."


class BadResponse(UpstreamError):
    """A 200 whose body or stream could not be understood (not JSON, oversized line, …)."""

    code = "upstream_bad_response"
    default_message = "The model provider sent a response that could not be read."
    retryable = True


class Unreachable(UpstreamError):
    """The connection could not be made (refused, DNS, TLS, connect timeout)."""

    code = "upstream_unreachable"
    billed = False
    default_message = "The model provider could not be reached."
    retryable = True


class Truncated(UpstreamError):
    """The connection ended before the response was complete (no ``[DONE]``, cut body)."""

    code = "response_truncated"
    default_message = "The response was interrupted before it finished."
    retryable = True


class Stalled(UpstreamError):
    """Nothing but keep-alives (or nothing at all) arrived for ``idle_timeout`` seconds."""

    code = "upstream_stalled"
    default_status = 504
    default_message = "The model provider stopped sending the response."
    retryable = True


class TimedOut(UpstreamError):
    """Our own limit passed: the queueing cap or the overall deadline."""

    code = "upstream_timeout"
    default_status = 504
    default_message = "The model provider took too long to answer."


class QueueTimedOut(TimedOut):
    """The upstream closed the connection after only keep-alives: its own queue timeout.

    Also what a non-streaming body of only whitespace means (§4.5), so it is retryable.
    """

    code = "upstream_queue_timeout"
    billed = False
    default_message = "The model provider gave up on the request while it was queued."
    retryable = True


class InsufficientSystemResource(UpstreamError):
    """``finish_reason: insufficient_system_resource`` — partial text is not an answer."""

    code = "insufficient_system_resource"
    default_status = 503
    default_message = "The model provider ran out of capacity while answering."
    retryable = True


class BlankJSONOutput(UpstreamError):
    """JSON mode returned only whitespace: the upstream's way of saying "invalid JSON" (§8.5)."""

    code = "blank_json_output"
    default_message = "The model produced no JSON output."
    retryable = True


def _parse_error_body(body: bytes) -> tuple[str, str]:
    """(message, type) from a DeepSeek error envelope; ("", "") when it is not one."""
    try:
        data = json.loads(body)
    except ValueError:
        return "", ""
    if not isinstance(data, dict):
        return "", ""
    error = data.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        kind = error.get("type")
        return (message if isinstance(message, str) else "", kind if isinstance(kind, str) else "")
    if isinstance(error, str):
        return error, ""
    return "", ""


def error_from_response(
    status: int, body: bytes, headers: Any, api_key: str, *, now: float | None = None
) -> UpstreamError:
    """Map a non-200 upstream answer to a typed error. ``headers`` is a mapping of headers."""
    upstream_message, kind = _parse_error_body(body)
    if upstream_message:
        detail = redact(f"HTTP {status} {kind}: {upstream_message}", api_key)
    else:
        # Gateway HTML and other non-JSON bodies: keep a short sample for the log only.
        sample = body[:200].decode("utf-8", "replace").strip()
        detail = redact(f"HTTP {status} (non-JSON body): {sample}", api_key)
    if status == 401:
        return AuthError(http_status=status, detail=detail)
    if status == 402:
        return InsufficientBalance(http_status=status, detail=detail)
    if status == 400 and _UNKNOWN_MODEL.search(upstream_message):
        return UnknownModel(detail=detail)
    if status in (400, 422):
        message = explanation(upstream_message, api_key)
        return InvalidRequest(message, http_status=status, detail=detail)
    if status == 429:
        retry_after = parse_retry_after(headers.get("retry-after"), now=now)
        return RateLimited(http_status=status, detail=detail, retry_after=retry_after)
    if status == 503:
        return Overloaded(http_status=status, detail=detail)
    if status >= 500:
        return ServerError(http_status=status, detail=detail)
    if status == 408:
        return TimedOut(http_status=status, detail=detail)
    # Other 4xx (403, 404, 413, …): a request the upstream will not serve; not transient. Not
    # a fault of the caller's request as DeepSeek documents its refusals (400, 422) but of
    # the deployment (a wrong base URL, a gateway's or firewall's refusal), whose text may
    # describe it (addresses, account names): for the log only.
    return InvalidRequest(http_status=status, detail=detail)


def error_from_event(error: object, api_key: str) -> UpstreamError:
    """Map a defensive in-stream ``data: {"error": {...}}`` event to a typed error.

    Such events arrive after the 200, so there is no status; the ``type`` decides.
    """
    message, kind = "", ""
    if isinstance(error, dict):
        raw_message = error.get("message")
        raw_kind = error.get("type")
        message = raw_message if isinstance(raw_message, str) else ""
        kind = raw_kind if isinstance(raw_kind, str) else ""
    elif isinstance(error, str):
        message = error
    detail = redact(f"in-stream error {kind}: {message}", api_key)
    lowered = kind.lower()
    if lowered == "authentication_error":
        return AuthError(detail=detail)
    if lowered == "invalid_request_error":
        return InvalidRequest(explanation(message, api_key), detail=detail)
    if "rate" in lowered:
        return RateLimited(detail=detail)
    if "overload" in lowered:
        return Overloaded(detail=detail)
    return ServerError(detail=detail)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (now if now is not None else time.time())
    if seconds != seconds or seconds < 0:  # NaN or in the past
        return 0.0
    return seconds
