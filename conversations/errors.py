"""The one error hierarchy of the domain: a stable code, an HTTP status, a message safe to show.

Views, the websocket consumer and the API turn a :class:`ChatError` into their own envelope;
they never send ``str()`` of any other exception to a client.
"""

from __future__ import annotations

from typing import Any


class ChatError(Exception):
    code = "error"
    status = 400
    default_message = "The request could not be completed."

    def __init__(
        self, message: str | None = None, *, param: str | None = None, **extra: Any
    ) -> None:
        self.message = message or self.default_message
        self.param = param
        self.extra = extra
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.param:
            data["param"] = self.param
        data.update(self.extra)
        return data


class InvalidParameter(ChatError):
    code = "invalid_parameter"


class JSONPromptMissing(InvalidParameter):
    code = "json_prompt_missing"


class NotFound(ChatError):
    code = "not_found"
    status = 404
    default_message = "Not found."


class PermissionDenied(ChatError):
    code = "permission_denied"
    status = 403
    default_message = "You may not do that here."


class Conflict(ChatError):
    code = "conflict"
    status = 409


class ModelNotAllowed(ChatError):
    code = "model_not_allowed"
    status = 403


class QuotaExceeded(ChatError):
    code = "quota_exceeded"
    status = 429


class RateLimited(ChatError):
    code = "rate_limited"
    status = 429


class TooManyStreams(RateLimited):
    code = "concurrent_streams_limit"


class Suspended(ChatError):
    code = "account_suspended"
    status = 403
    default_message = "Your account is suspended."


class UnsupportedContentEncoding(ChatError):
    """A request body compressed (``Content-Encoding``): the API reads bodies as sent."""

    code = "unsupported_content_encoding"
    status = 415


class ShuttingDown(ChatError):
    code = "server_shutting_down"
    status = 503
    default_message = "This server is restarting; try again in a moment."


class InternalError(ChatError):
    code = "internal_error"
    status = 500
    default_message = "Something went wrong on our side."
