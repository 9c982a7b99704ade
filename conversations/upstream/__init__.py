"""The DeepSeek upstream client: request building, SSE parsing, retries, timeouts, errors.

It knows nothing of Django: configuration arrives as an :class:`UpstreamConfig`, a registry
entry as a :class:`ModelTarget`, and results leave as plain dataclasses.
"""

from __future__ import annotations

from .client import (
    RetryNotice,
    UpstreamClient,
    UpstreamConfig,
    aclose_shared_client,
    create_http_client,
    get_shared_client,
)
from .errors import (
    AuthError,
    BadResponse,
    BlankJSONOutput,
    InsufficientBalance,
    InsufficientSystemResource,
    InvalidRequest,
    Overloaded,
    QueueTimedOut,
    RateLimited,
    ServerError,
    Stalled,
    TimedOut,
    Truncated,
    UnknownModel,
    Unreachable,
    UpstreamError,
)
from .events import (
    ChatResult,
    Completed,
    ContentDelta,
    Finish,
    LogprobsDelta,
    ReasoningDelta,
    StreamEvent,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from .request import ModelTarget, build_chat_request

__all__ = [
    "AuthError",
    "BadResponse",
    "BlankJSONOutput",
    "ChatResult",
    "Completed",
    "ContentDelta",
    "Finish",
    "InsufficientBalance",
    "InsufficientSystemResource",
    "InvalidRequest",
    "LogprobsDelta",
    "ModelTarget",
    "Overloaded",
    "QueueTimedOut",
    "RateLimited",
    "ReasoningDelta",
    "RetryNotice",
    "ServerError",
    "Stalled",
    "StreamEvent",
    "TimedOut",
    "ToolCall",
    "ToolCallDelta",
    "Truncated",
    "UnknownModel",
    "Unreachable",
    "UpstreamClient",
    "UpstreamConfig",
    "UpstreamError",
    "Usage",
    "aclose_shared_client",
    "build_chat_request",
    "create_http_client",
    "get_shared_client",
]
