"""One log line per event, each carrying the request id and the user id.

The ids live in context variables, so lines written deep in the stack (or by a websocket
consumer, which sets them itself) are tagged without passing anything around. A line written
by the event loop's own callbacks (daphne's timeout checks, Twisted's reads and writes: no
task) carries no ids: such a callback runs in whatever context it was scheduled from, often
some request's, and its lines are about other sockets. Each connection starts untagged too
(:func:`untag_each_connection`), whatever context daphne created its task in.
Nothing here logs headers, bodies or query strings: they may hold secrets. Nor a path's
``token`` (a share link's, ``/s/<token>/``: whoever reads it can open the conversation); and
since Django writes lines of its own naming a request's path (a request its CSRF check refuses,
an internal error), every line passes :class:`SafeLineFilter` on its way out. The same filter
escapes control characters in the values formatted into a line: a path with ``%0A`` in it
(decoded by the server) would otherwise write a second, forged line of the log.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from contextvars import ContextVar
from typing import Any

from django.http import HttpRequest, HttpResponse

from chatsite.middleware import Middleware

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
user_id_var: ContextVar[str] = ContextVar("user_id", default="-")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
logger = logging.getLogger("chatsite.request")


def _within_a_task_or_thread() -> bool:
    """Whether the line is written by a task (a request's, a socket's, a reply's) or a thread
    of one (a sync view's, with a copy of its task's context), not by the event loop itself."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return True
    return asyncio.current_task() is not None


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _within_a_task_or_thread():
            record.request_id = request_id_var.get()
            record.user_id = user_id_var.get()
        else:
            record.request_id = record.user_id = "-"
        return True


# A link's token wherever a line names a link's path ("Forbidden (CSRF cookie not set.): /s/…/").
_TOKEN_IN_LINE = re.compile(r"/s/[^/\s?#\"']+")


# Characters that end or rewrite a line in a log reader: C0 and C1 controls, DEL, and Unicode's
# line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _without_tokens(value: object) -> object:
    if isinstance(value, str) and "/s/" in value:
        return _TOKEN_IN_LINE.sub("/s/<token>", value)
    return value


def _loggable(value: object) -> object:
    """A value formatted into a line: no link token, no control character (escaped)."""
    value = _without_tokens(value)
    if isinstance(value, str):
        return _CONTROL.sub(_escaped, value)
    return value


class SafeLineFilter(logging.Filter):
    """A link's token out of every line (its message and the values formatted into it), and
    the values' control characters escaped: one event, one line, as the code wrote it. (The
    message itself is the code's own format string, kept as written.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _without_tokens(record.msg)
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_loggable(arg) for arg in args)
        elif isinstance(args, dict):
            record.args = {key: _loggable(value) for key, value in args.items()}
        return True


def bind(request_id: str | None = None, user_id: object = None) -> None:
    """Tag the current task's log lines (used by consumers and background tasks too)."""
    if request_id is not None:
        request_id_var.set(request_id)
    if user_id is not None:
        user_id_var.set(str(user_id))


def untag_each_connection(app: Any) -> Any:
    """``app`` with each connection's task starting untagged: daphne creates it from whatever
    callback took the connection, in that callback's context (maybe another request's)."""

    async def untagged(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        request_id_var.set("-")
        user_id_var.set("-")
        return await app(scope, receive, send)

    return untagged


def new_request_id(header: str | None = None) -> str:
    if header and _REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex[:16]


class RequestLogMiddleware(Middleware):
    """Assign a request id (or accept a sane X-Request-ID), log one line per request."""

    def before(self, request: HttpRequest) -> None:
        bind(new_request_id(request.headers.get("X-Request-ID")), "-")
        request._log_started = time.perf_counter()  # type: ignore[attr-defined]
        return None

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        # Only a user the view already loaded: touching request.user here would query the
        # session synchronously inside the event loop.
        user = getattr(request, "_cached_user", None)
        if user is not None and user.is_authenticated:
            bind(user_id=user.pk)
        response["X-Request-ID"] = request_id_var.get()
        elapsed_ms = (time.perf_counter() - request._log_started) * 1000  # type: ignore[attr-defined]
        logger.info(
            "%s %s %s %.1fms",
            request.method,
            _loggable_path(request),
            response.status_code,
            elapsed_ms,
        )
        return response


# A link's path by its shape, not by the route it resolved to: a path no route takes (the link
# without its final slash, which Django redirects; a tail pasted after it) still holds a token.
_LINK_TOKEN = re.compile(r"^/s/[^/]+")


def _loggable_path(request: HttpRequest) -> str:
    return _LINK_TOKEN.sub("/s/<token>", request.path, count=1)
