"""Error bodies exactly as DeepSeek sends them (deepseek-api.md §2 and §6)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TypedDict

AUTH_FORMAT_MESSAGE = "Authentication Fails (auth header format should be Bearer sk-...)"
PREFIX_NOT_BETA_MESSAGE = (
    'prefix is only available when using beta api (set base_url="https://api.deepseek.com/beta")'
)
PASSBACK_MESSAGE = "The `reasoning_content` in the thinking mode must be passed back to the API."


class ErrorDetail(TypedDict):
    message: str
    type: str
    param: None
    code: str


class ErrorBody(TypedDict):
    error: ErrorDetail


@dataclass
class ApiError(Exception):
    """A request the simulated upstream refuses, with the status and body it would send."""

    status: int
    message: str
    type: str = "invalid_request_error"
    retry_after: int | None = None

    def body(self) -> ErrorBody:
        # `code` is the literal "invalid_request_error" whatever the status, as upstream does.
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": None,
                "code": "invalid_request_error",
            }
        }

    def encoded(self) -> bytes:
        return json.dumps(self.body(), separators=(",", ":"), ensure_ascii=False).encode()


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def invalid_key(key: str) -> ApiError:
    return ApiError(
        401,
        f"Authentication Fails, Your api key: ****{key[-4:]} is invalid",
        "authentication_error",
    )


def auth_format() -> ApiError:
    return ApiError(401, AUTH_FORMAT_MESSAGE, "authentication_error")


def insufficient_balance() -> ApiError:
    return ApiError(402, "Insufficient Balance", "unknown_error")


def concurrency_exceeded(current: int, limit: int, retry_after: int | None = None) -> ApiError:
    return ApiError(
        429,
        f"Your current concurrency is {current}, which exceeds your concurrency limit of "
        f"{limit} based on your remaining balance. Please top up your balance to restore "
        "your concurrency.",
        "rate_limit_error",
        retry_after,
    )


def server_error() -> ApiError:
    return ApiError(500, "Internal Server Error", "internal_error")


def server_overloaded() -> ApiError:
    return ApiError(
        503,
        "Service Unavailable: the server is overloaded, please retry later.",
        "overloaded_error",
    )


def deserialization(message: str, status: int) -> ApiError:
    return ApiError(status, f"Failed to deserialize the JSON body into the target type: {message}")


def context_overflow(context: int, prompt_tokens: int, max_tokens: int) -> ApiError:
    return bad_request(
        f"This model's maximum context length is {context} tokens. However, you requested "
        f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, {max_tokens} "
        "in the completion). Please reduce the length of the messages or completion."
    )
