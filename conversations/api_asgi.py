"""The DeepSeek-compatible HTTP API as a small ASGI application, in front of Django.

``chatsite/asgi.py`` sends the paths in :data:`PATHS` here and everything else to Django:

* ``POST /v1/chat/completions`` and ``POST /chat/completions`` — DeepSeek's chat completions,
  streamed or not, against our registry names (``deepseek-chat``, ``deepseek-reasoner``);
* ``GET /v1/models`` and ``GET /models`` — the models the key's user may call, and
  ``GET /v1/models/{id}`` (``/models/{id}``) one of them (the SDKs' ``models.retrieve``);
* ``GET /user/balance`` (and ``/v1/user/balance``) — the user's remaining token allowance, in
  DeepSeek's balance shape with ``currency: "TOKENS"``.

Why not a Django view: a call is a few milliseconds of our own work around the upstream's, and
Django's request path (a sync middleware chain run in a thread, the async view through
``async_to_sync``, the ORM on a thread) cost several times that. Here a request never leaves
the event loop: the units of database work are raw statements on an asyncio pool
(``api_calls``, ``pgpool``), the upstream call goes through the shared upstream client, and
``api_wire`` builds the JSON and SSE. No session, no cookies, no CSRF: a personal key instead.

The key goes in ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (the API reference's
two formats), exactly one of them. Errors use DeepSeek's envelope.

Cross-origin calls (CORS) are allowed from any origin: ``OPTIONS`` answers a preflight, and
every answer says ``Access-Control-Allow-Origin: *`` (never with credentials). The key in a
header is the only credential, so a page can do nothing here that its own key does not allow;
browser-based tools need this to call the API at all.

Streaming: we wait up to :data:`FIRST_OUTPUT_WAIT_S` for the upstream's first delta before
answering, so that a request the upstream refuses at once still gets its real status. After
that the 200 goes out, and a later failure (the first event's too, once a keep-alive went out)
ends the stream with a ``data: {"error": …}`` event and no ``[DONE]``. From the 200 on, the
client never waits more than :data:`KEEPALIVE_INTERVAL_S` for a byte: whenever the upstream is
silent (queued before the first delta, or paused mid-stream) a ``: keep-alive`` comment goes
out (:class:`_Heartbeat`), so clients and proxies with a short read timeout keep the stream.
A non-streamed answer not ready within the same wait gets its 200 and blank lines before its
body, as DeepSeek's queue sends (:class:`_SlowAnswer`). A client that leaves (mid-stream or
while waiting for a non-streamed answer) cancels the upstream call, and the call is settled as
``cancelled`` with what it used.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import logging
import math
import re
import secrets
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import replace
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from chatsite import logs
from conversations import api_calls, api_wire, quota
from conversations.api_keys import Call, InvalidKey
from conversations.errors import (
    ChatError,
    InvalidParameter,
    QuotaExceeded,
    ShuttingDown,
    UnsupportedContentEncoding,
)
from conversations.generation import GenerationService, get_service, upstream_client
from conversations.text import DuplicateKey, check_parsed_json, loads_unique, utf8_safe
from conversations.upstream import (
    BadResponse,
    ChatResult,
    Completed,
    ContentDelta,
    Finish,
    LogprobsDelta,
    ReasoningDelta,
    StreamEvent,
    ToolCall,
    ToolCallDelta,
    UpstreamClient,
    UpstreamError,
    Usage,
)
from conversations.upstream import RateLimited as UpstreamRateLimited

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

logger = logging.getLogger("conversations.api")
request_logger = logging.getLogger("chatsite.request")

MAX_BODY_BYTES = 2 * 1024 * 1024
#: Past this size a body is parsed only once its key is known to be live (``_chat``): parsing
#: 2 MB of nested objects holds the event loop for up to ~0.6 s, which no one without a key
#: may make a worker do. A smaller body is parsed first, its key checked by the statement that
#: admits the call (one round trip for both).
KEY_BEFORE_PARSE_BYTES = 64 * 1024
#: How long a call waits for the upstream's first output before its status goes out (a 200):
#: an upstream that refuses at once still gets its own status through.
FIRST_OUTPUT_WAIT_S = 5.0
#: The longest a client waits for a byte once the status went out: after half of it without
#: one, and at most all of it, a keep-alive goes out (see :class:`_Heartbeat`). Well under
#: the idle timeouts of common proxies and clients (30-60 s), while the upstream's own silence
#: may last minutes (a queue, a long pause in reasoning: UPSTREAM_IDLE_TIMEOUT is 180 s).
KEEPALIVE_INTERVAL_S = 10.0
#: The longest the upstream client's retries of a call may wait in all (the upstream's
#: Retry-After, backoff): done a second before the status goes out, so that a failure our
#: retries did not mend still has its own status (a 429 with its Retry-After, which the SDKs
#: wait out and retry themselves), not a 200 whose body is the error.
UPSTREAM_RETRY_BUDGET_S = FIRST_OUTPUT_WAIT_S - 1.0
# Statuses of upstream failures as our callers see them; anything else is a bad gateway.
UPSTREAM_STATUSES = {400: 400, 422: 400, 429: 429, 503: 503, 504: 504}

CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
MODELS_PATHS = frozenset({"/v1/models", "/models"})
BALANCE_PATHS = frozenset({"/v1/user/balance", "/user/balance"})
PATHS = CHAT_PATHS | MODELS_PATHS | BALANCE_PATHS
#: ``GET /v1/models/{id}``: one model (an id holds no slash).
MODEL_PREFIXES = ("/v1/models/", "/models/")
#: What the read endpoints answer (HEAD: a GET's headers, no body).
READ_METHODS = frozenset({"GET", "HEAD"})
#: Everything under it is the API's: a path it does not serve is a JSON 404, not Django's page.
PREFIX = "/v1/"
#: DeepSeek's beta base URL (chat prefix completion, FIM, strict tools), which we do not offer:
#: a client pointed at it hears so in the API's envelope, not from the site's HTML 404 page.
BETA_PREFIX = "/beta/"


def serves(path: str) -> bool:
    """Whether ``path`` is the API's (``chatsite/asgi.py`` routes by this)."""
    return (
        path in PATHS
        or path.startswith((PREFIX, BETA_PREFIX))
        or path in ("/v1", "/beta")
        or _endpoint(path) in PATHS
        or _model_id(path) is not None
    )


def _endpoint(path: str) -> str:
    """The endpoint ``path`` names: one of :data:`PATHS` with a trailing slash is that path."""
    if path.endswith("/") and path[:-1] in PATHS:
        return path[:-1]
    return path


def _model_id(path: str) -> str | None:
    """The id ``path`` names under ``/models/`` (a trailing slash allowed), else None."""
    for prefix in MODEL_PREFIXES:
        if path.startswith(prefix):
            name = path[len(prefix) :]
            if name.endswith("/"):
                name = name[:-1]
            return name if name and "/" not in name else None
    return None


#: On every answer: any origin may read it (no credentials: the key is sent by the page itself).
_CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", b"x-request-id, retry-after, x-should-retry"),
]
#: The request headers a preflight allows when it names none we can echo.
_CORS_REQUEST_HEADERS = b"authorization, x-api-key, content-type, x-request-id"
_HEADER_LIST = re.compile(
    rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*,[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*\Z"
)
#: No answer of the API is for a cache to keep (a balance, a completion), as DeepSeek says it.
_JSON_HEADERS = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-cache"),
    (b"x-content-type-options", b"nosniff"),
]
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
    (b"x-content-type-options", b"nosniff"),
]


# Request ids need to be unique, not secret: a random prefix per process and a counter are
# as good as a UUID per request, for a fraction of its cost.
_REQUEST_ID_PREFIX = secrets.token_hex(4)
_request_numbers = itertools.count(1)


def _next_request_id() -> str:
    return f"{_REQUEST_ID_PREFIX}{next(_request_numbers) & 0xFFFFFFFF:08x}"


class _Request:
    """What the API reads of a request: a few headers, parsed once."""

    __slots__ = (
        "api_key",
        "authorization",
        "content_encoding",
        "content_length",
        "host",
        "preflight_headers",
        "request_id",
    )

    def __init__(self, scope: Scope) -> None:
        self.authorization: str | None = None
        self.api_key: str | None = None
        self.content_length: bytes | None = None
        self.content_encoding: bytes | None = None
        self.host: bytes | None = None
        # A CORS preflight's Access-Control-Request-Headers.
        self.preflight_headers: bytes | None = None
        request_id: bytes | None = None
        for name, value in scope["headers"]:
            # ASGI servers give lower-case names.
            if name == b"authorization":
                self.authorization = value.decode("latin-1")
            elif name == b"x-api-key":
                self.api_key = value.decode("latin-1")
            elif name == b"content-length":
                self.content_length = value
            elif name == b"content-encoding":
                self.content_encoding = value
            elif name == b"host":
                self.host = value
            elif name == b"x-request-id":
                request_id = value
            elif name == b"access-control-request-headers":
                self.preflight_headers = value
        self.request_id = (
            logs.new_request_id(request_id.decode("latin-1"))
            if request_id is not None
            else _next_request_id()
        )

    def secret(self) -> str:
        """The key from exactly one of the two headers the reference allows. A header sent
        empty is not one (a client's default header left blank beside the other), nor is a
        ``Bearer`` with no key after it (that default header's template, its key left blank)."""
        authorization = (
            self.authorization
            if self.authorization and self.authorization.strip().lower() not in ("", "bearer")
            else None
        )
        api_key = self.api_key if self.api_key and self.api_key.strip() else None
        if authorization is not None and api_key is not None:
            raise InvalidParameter(
                "Send the key in either 'Authorization: Bearer <key>' or 'X-API-Key: <key>', "
                "not both."
            )
        if api_key is not None:
            secret = api_key.strip()
        elif authorization is not None and authorization[:7].lower() == "bearer ":
            secret = authorization[7:].strip()
        else:
            raise InvalidKey()
        if not secret:
            raise InvalidKey()
        return secret


# --- answers ----------------------------------------------------------------------------------


class _Response:
    """Sends one response; remembers its status (and a stream's failure) for the log line."""

    __slots__ = ("answered", "head", "request_id", "send", "status", "stream_error")

    def __init__(self, send: Send, request_id: str, *, head: bool = False) -> None:
        self.send = send
        self.request_id = request_id.encode()
        # A HEAD request: the headers of the answer a GET would get, without its body.
        self.head = head
        self.status = 0
        # The code of the error event that ended a stream after its 200.
        self.stream_error: str | None = None
        # Its last bytes are going out: the client's hang-up after them stops nothing.
        self.answered = False

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, *_CORS_HEADERS, (b"x-request-id", self.request_id)],
            }
        )

    async def answer(self, last: Message) -> None:
        """Send the answer's last message."""
        self.answered = True
        await self.send(last)

    async def json(
        self, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
        if extra:
            headers += extra
        await self.start(status, headers)
        await self.send({"type": "http.response.body", "body": b"" if self.head else body})

    async def envelope(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        body = api_wire.error_envelope(status, message, param=param, code=code)
        await self.json(status, api_wire.dumps(body).encode(), extra)

    async def error(self, error: ChatError) -> None:
        extra = _retry_after_header(error.extra.get("retry_after"))
        if isinstance(error, QuotaExceeded) or (error.status == 429 and extra is None):
            # A spent day or month: no retry passes before it resets; nor any, a limit of 0
            # (a refusal naming no wait). The OpenAI SDKs retry a 429 unless told not to
            # (DeepSeek's "out of balance" is a 402 they never retry).
            extra = [*(extra or []), (b"x-should-retry", b"false")]
        elif isinstance(error, UnsupportedContentEncoding):
            # What the API takes instead (RFC 9110 §12.5.3).
            extra = [(b"accept-encoding", b"identity")]
        await self.envelope(
            error.status, error.message, param=error.param, code=error.code, extra=extra
        )

    async def upstream_error(self, error: UpstreamError) -> None:
        status = _upstream_status(error)
        # The provider's own wait, passed on as our quota's is.
        retry_after = error.retry_after if isinstance(error, UpstreamRateLimited) else None
        extra = _retry_after_header(retry_after)
        if not error.retryable:
            # Our provider key rejected, its balance spent, its deadline passed: no retry of
            # the client's mends those (the upstream client retried what a retry can mend),
            # and the OpenAI SDKs retry every 5xx unless told not to.
            extra = [*(extra or []), (b"x-should-retry", b"false")]
        await self.json(status, api_wire.dumps(_upstream_envelope(error)).encode(), extra)

    async def internal_error(self) -> None:
        logger.exception("API request failed")
        await self.envelope(500, "Something went wrong on our side.", code="internal_error")


def early_refusal(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 answer in the envelope, for a refusal the worker makes before the
    request reaches this application (``chatsite/twisted_requests.py``: a body past
    :data:`MAX_BODY_BYTES`, a request that is not valid HTTP): the headers every answer of the
    API carries, and ``Connection: close`` (the rest of the request is not read)."""
    body = api_wire.dumps(api_wire.error_envelope(status, message)).encode()
    head = [
        *_JSON_HEADERS,
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *_CORS_HEADERS,
        (b"x-request-id", _next_request_id().encode()),
    ]
    reason = HTTPStatus(status).phrase.encode()
    lines = [b"HTTP/1.1 %d %s" % (status, reason), *(b"%s: %s" % header for header in head)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _retry_after_header(seconds: object) -> list[tuple[bytes, bytes]] | None:
    """A Retry-After header in whole seconds (at least 1), or None without a wait to give."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return None
    return [(b"retry-after", str(max(1, math.ceil(seconds))).encode())]


def _upstream_status(error: UpstreamError) -> int:
    return UPSTREAM_STATUSES.get(error.http_status, 502)


def _upstream_envelope(error: UpstreamError) -> api_wire.ErrorEnvelope:
    # error.message is safe by contract (no key, no upstream internals); detail is for the log.
    return api_wire.error_envelope(_upstream_status(error), error.message, code=error.code)


# --- the application --------------------------------------------------------------------------

_host_checks: dict[bytes, bool] = {}


def _host_allowed(host: bytes | None) -> bool:
    """Django's ALLOWED_HOSTS rule (the API does not go through Django's request)."""
    if host is None:
        return True
    allowed = _host_checks.get(host)
    if allowed is None:
        domain, _ = split_domain_port(host.decode("latin-1"))
        patterns = settings.ALLOWED_HOSTS
        if settings.DEBUG and not patterns:
            patterns = [".localhost", "127.0.0.1", "[::1]"]
        allowed = bool(domain) and validate_host(domain, patterns)
        if len(_host_checks) < 1024:
            _host_checks[host] = allowed
    return allowed


class ApiApplication:
    """The ASGI application behind :data:`PATHS` (HTTP only)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request = _Request(scope)
        logs.bind(request.request_id, "-")
        response = _Response(send, request.request_id, head=scope["method"] == "HEAD")
        path = _endpoint(scope["path"])
        try:
            if not _host_allowed(request.host):
                await response.envelope(400, "Invalid Host header.")
            elif scope["method"] == "OPTIONS" and path in PATHS:
                await _options(response, request, "POST" if path in CHAT_PATHS else "GET, HEAD")
            elif path in CHAT_PATHS:
                await self._chat(scope, receive, request, response)
            elif path in MODELS_PATHS:
                await self._models(scope, request, response)
            elif (model_id := _model_id(path)) is not None:
                if scope["method"] == "OPTIONS":
                    await _options(response, request, "GET, HEAD")
                else:
                    await self._model(scope, request, response, model_id)
            elif path in BALANCE_PATHS:
                await self._balance(scope, request, response)
            else:
                beta = (
                    "DeepSeek's beta features (chat prefix completion, FIM, strict tools) are "
                    "not offered here. "
                    if path == "/beta" or path.startswith(BETA_PREFIX)
                    else ""
                )
                await response.envelope(
                    404,
                    f"No such endpoint: {path[:200]}. {beta}The API serves POST "
                    "/v1/chat/completions, GET /v1/models (and /v1/models/{id}) and GET "
                    "/user/balance.",
                    code="not_found",
                )
        except ChatError as error:
            # Raised past the endpoint's own handling: the database went away while settling.
            logger.warning("API request failed: %s", error.code)
            if not response.status:
                await response.error(error)
        except Exception:
            if response.status:
                logger.exception("API request failed after the response started")
            else:
                await response.internal_error()
        if request_logger.isEnabledFor(logging.INFO):
            request_logger.info(
                "%s %s %s %.1fms%s",
                scope["method"],
                scope["path"],
                response.status or 499,
                (time.perf_counter() - started) * 1000,
                # A 200 whose stream ended with an error event says so.
                f" error={response.stream_error}" if response.stream_error else "",
            )

    # -- the endpoints -------------------------------------------------------------------------

    async def _models(self, scope: Scope, request: _Request, response: _Response) -> None:
        if scope["method"] not in READ_METHODS:
            await _method_not_allowed(response, "GET, HEAD")
            return
        try:
            names = await api_calls.usable_models(request.secret())
        except ChatError as error:
            await response.error(error)
            return
        await response.json(200, api_wire.models_body(names))

    async def _model(
        self, scope: Scope, request: _Request, response: _Response, model_id: str
    ) -> None:
        """One model of the list; any other (disabled, not the user's, unknown) is the same
        404, so that a key learns nothing of the models its user may not use."""
        if scope["method"] not in READ_METHODS:
            await _method_not_allowed(response, "GET, HEAD")
            return
        try:
            name = await api_calls.usable_model(request.secret(), model_id)
        except ChatError as error:
            await response.error(error)
            return
        if name is None:
            await response.envelope(
                404,
                f"The model `{utf8_safe(model_id[:200])}` does not exist or you do not have "
                "access to it.",
                param="model",
                code="model_not_found",
            )
            return
        await response.json(200, api_wire.model_body(name))

    async def _balance(self, scope: Scope, request: _Request, response: _Response) -> None:
        if scope["method"] not in READ_METHODS:
            await _method_not_allowed(response, "GET, HEAD")
            return
        try:
            balance = await api_calls.balance_of(request.secret())
        except ChatError as error:
            await response.error(error)
            return
        body = api_wire.balance_body(
            available=balance.available, remaining_tokens=balance.remaining_tokens
        )
        await response.json(200, body)

    async def _chat(
        self, scope: Scope, receive: Receive, request: _Request, response: _Response
    ) -> None:
        if scope["method"] != "POST":
            await _method_not_allowed(response, "POST")
            return
        service = get_service()
        service.hook_drain()
        try:
            if not service.accepting:
                raise ShuttingDown()  # draining for a restart (SIGTERM): the client retries
            secret = request.secret()
            declared = request.content_length
            if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                raise _TooLarge()
            raw = await _read_body(receive)
            if len(raw) > KEY_BEFORE_PARSE_BYTES:
                await api_calls.authorize(secret)  # InvalidKey before any parse
            call = await api_calls.start_call(secret, _parse_body(raw, request.content_encoding))
        except _TooLarge:
            await response.envelope(
                413, f"The request body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB."
            )
            return
        except _ClientGone:
            return
        except ChatError as error:
            await response.error(error)
            return
        logs.bind(user_id=call.user_id)
        await _serve_call(call, receive, response, service)


async def _serve_call(
    call: Call, receive: Receive, response: _Response, service: GenerationService
) -> None:
    """Serve an admitted call in a task of its own (``work``): a client that hangs up cancels
    it, and the upstream call stops and is settled with what it used (see _complete and
    _stream). Not so daphne, which cancels every request on SIGTERM: while the process drains
    (``GenerationService.shutdown``) the call goes on for the grace period, and one still
    running then is ended by the shutdown and told why."""
    work = asyncio.ensure_future(
        _stream(call, response) if call.request.stream else _complete(call, response)
    )
    left = asyncio.Event()
    watcher = asyncio.ensure_future(_watch_disconnect(receive, work, left, response))
    service.api_calls.add(work)
    try:
        while not work.done():
            try:
                await asyncio.shield(work)
            except asyncio.CancelledError:
                if work.done():
                    break
                if service.accepting:
                    work.cancel()  # not a drain: stop the call with its request
                    with contextlib.suppress(BaseException):
                        await work
                    raise
                this = asyncio.current_task()
                assert this is not None
                this.uncancel()  # daphne's own cancel as the process drains: go on
        if work.cancelled():
            if response.answered:
                return  # cut as it settled after its answer (the settlement goes on)
            if service.api_calls_ending and not left.is_set():
                # Still running when the grace ran out: stopped and settled for what it used
                # (as for a client that left), and told why, so that its client retries.
                await _ended_by_shutdown(call, response)
            return
        work.result()  # its own failure, if any, as the request's
    finally:
        service.api_calls.discard(work)
        watcher.cancel()


async def _ended_by_shutdown(call: Call, response: _Response) -> None:
    """The end of a call the server stopped as it shut down: its 503, or once its 200 went out
    the error event of a stream, the error envelope of a non-streamed answer's body."""
    ended = ShuttingDown()
    envelope = api_wire.error_envelope(ended.status, ended.message, code=ended.code)
    with contextlib.suppress(Exception):  # the client may be gone too
        if not response.status:
            await response.error(ended)
            return
        response.stream_error = ended.code
        render = api_wire.error_event if call.request.stream else _json_bytes
        await response.send({"type": "http.response.body", "body": render(envelope)})


class _TooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    if message["type"] == "http.disconnect":
        raise _ClientGone()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        if len(body) > MAX_BODY_BYTES:
            raise _TooLarge()
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone()
        body = message.get("body", b"")
        size += len(body)
        if size > MAX_BODY_BYTES:
            raise _TooLarge()
        chunks.append(body)
        if not message.get("more_body"):
            return b"".join(chunks)


def _parse_body(raw: bytes, content_encoding: bytes | None) -> Any:
    """The parsed body, or the ChatError to answer once the key is known to be good.

    A compressed body (``Content-Encoding: gzip``…) is refused with a 415, as the uncompressed
    text it is not: read as JSON it was a misleading "not valid UTF-8", and a plain body
    labelled gzip was taken as it came. Decompressing would put a compression bomb's work on
    the event loop for no client we know of (the SDKs send bodies as they are).
    """
    if content_encoding is not None:
        coding = content_encoding.strip().lower()
        if coding not in (b"", b"identity"):
            shown = coding[:40].decode("latin-1")
            return UnsupportedContentEncoding(
                f"The request body is sent with Content-Encoding: {shown}; send it "
                "uncompressed (this API takes no compressed bodies).",
            )
    return _parse_json(raw)


def _parse_json(raw: bytes) -> Any:
    """The parsed body, or the InvalidParameter to answer once the key is known to be good."""
    try:
        # UTF-8 only, as DeepSeek's API takes (a leading byte order mark, which some Windows
        # tools write, is skipped as RFC 8259 allows).
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return InvalidParameter(
            f"The request body is not valid UTF-8 (byte {error.start}): send JSON in UTF-8."
        )
    try:
        # JSON only: Python's NaN and Infinity would be passed on upstream as a body it
        # cannot read.
        parsed = loads_unique(text)
    except json.JSONDecodeError as error:
        # Where, as DeepSeek says it: hand-written bodies (curl, shell quoting) go wrong here.
        return InvalidParameter(
            f"The request body is not valid JSON: {error.msg} at line {error.lineno} "
            f"column {error.colno}."
        )
    except DuplicateKey as error:
        return _duplicate_key(error)
    except ValueError:
        return InvalidParameter("The request body is not valid JSON.")
    try:
        # What the upstream request could not encode (NUL passes: it is sent, not stored).
        check_parsed_json(raw, parsed, "messages", nul_ok=True)
    except InvalidParameter as error:
        return error
    return parsed


def _duplicate_key(error: DuplicateKey) -> InvalidParameter:
    """The refusal of a body naming a key twice in one object (which one we would have read
    is not for us to guess): the key, where, and the top-level field it is under."""
    # Any text can be a key, a lone surrogate too.
    where = f"{utf8_safe(error.path[:200])} has" if error.path else "The request body has"
    return InvalidParameter(
        f"{where} the key {json.dumps(error.key[:100])} twice: send each key of an object once.",
        param=utf8_safe(error.field[:100]) or None,
    )


async def _options(response: _Response, request: _Request, allowed: str) -> None:
    """An OPTIONS request: the methods, and a CORS preflight's answer (any origin may call)."""
    asked = request.preflight_headers
    headers = asked.strip() if asked is not None and _HEADER_LIST.match(asked.strip()) else b""
    await response.start(
        204,
        [
            (b"allow", allowed.encode()),
            (b"access-control-allow-methods", allowed.encode()),
            # Echoed: "*" would not cover Authorization.
            (b"access-control-allow-headers", headers or _CORS_REQUEST_HEADERS),
            (b"access-control-max-age", b"7200"),
            (b"vary", b"access-control-request-headers"),
        ],
    )
    await response.send({"type": "http.response.body", "body": b""})


async def _method_not_allowed(response: _Response, allowed: str) -> None:
    await response.envelope(
        405, f"Method not allowed; use {allowed}.", extra=[(b"allow", allowed.encode())]
    )


async def _watch_disconnect(
    receive: Receive, task: asyncio.Task[Any], left: asyncio.Event, response: _Response
) -> None:
    """Cancel ``task`` when the client hangs up (the body has been read: nothing else comes);
    not once its answer has gone out (then the task only settles the call)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if response.answered:
                return
            left.set()
            task.cancel()
            return


# --- one call ---------------------------------------------------------------------------------


def _estimated_usage(call: Call, result: ChatResult) -> dict[str, Any]:
    """Only for an upstream that sent no usage at all (DeepSeek always does)."""
    return api_wire.estimated_usage(
        quota.estimate_prompt_tokens(call.request.messages, call.request.params.get("tools")),
        quota.estimate_tokens(result.output_text),
        quota.estimate_tokens(result.reasoning) if call.target.thinking else None,
    )


_NOT_BILLED = ChatResult(usage=dict(quota.NOTHING_USED))


def _received(
    error: UpstreamError, received: ChatResult | None, output_started: bool = False
) -> ChatResult | None:
    """What a failed call is settled with: what was received, or nothing used when the
    provider refused or never took it (``UpstreamError.billed``) and nothing came."""
    if error.billed or output_started or (received is not None and received.usage):
        return received
    return _NOT_BILLED


async def _settle(call: Call, outcome: str, result: ChatResult | None) -> None:
    # Shielded: a client that leaves while we settle must not leave the reservation behind.
    if not call.settled:
        await asyncio.shield(api_calls.finish_call(call, outcome=outcome, result=result))


async def _settle_waiting(
    call: Call, outcome: str, result: ChatResult | None, waiting: _SlowAnswer
) -> None:
    """Settle with ``waiting``'s timer and heartbeat still running, then stop them: a client
    keeps hearing from us while the settlement waits out a database outage (which it may for
    as long as the outage lasts: ``pgpool.outlasting_outage``)."""
    try:
        await _settle(call, outcome, result)
    finally:
        await waiting.stop()


async def _complete(call: Call, response: _Response) -> None:
    """A non-streaming completion; settled exactly once, also when the client leaves."""
    outcome = "cancelled"
    result: ChatResult | None = None
    request = call.request
    waiting = _SlowAnswer(response)
    try:
        result = await _answer_of(call)
        outcome = "complete"
    except asyncio.CancelledError as stop:
        # The client left: charged what the upstream had produced (and its count, if sent).
        result = getattr(stop, "partial", None)
        raise
    except UpstreamError as error:
        outcome = "failed"
        # Settled while the blank lines go on: the settlement may wait out a database outage.
        await _settle_waiting(call, outcome, _received(error, error.partial), waiting)
        if response.status:
            await waiting.fail(_upstream_envelope(error))
        else:
            await response.upstream_error(error)
        return
    except Exception:
        outcome = "failed"
        # Logged before the settlement, which may wait out an outage (or fail), once.
        logger.exception("API request failed")
        await _settle_waiting(call, outcome, None, waiting)
        if response.status:
            await waiting.fail(_INTERNAL_ERROR)
        else:
            await response.json(500, _json_bytes(_INTERNAL_ERROR))
        return
    finally:
        # Reached first by a cancellation (the client left): settle what was used. An
        # answer is settled once it has gone out (below).
        if outcome == "cancelled":
            await waiting.stop()  # nobody to keep waiting
        if outcome != "complete":
            await _settle_waiting(call, outcome, result, waiting)
    usage = result.usage or _estimated_usage(call, result)
    body = api_wire.completion_body(
        result,
        model_name=call.model_name,
        fingerprint=call.fingerprint,
        thinking=call.target.thinking,
        logprobs=request.logprobs,
        usage=usage,
    )

    async def answer() -> None:
        await waiting.stop()  # here: settled even if a cancel lands on it
        if response.status:
            # After the blank lines: the body ends the response (its length was not known).
            await response.answer({"type": "http.response.body", "body": body})
        else:
            response.answered = True
            await response.json(200, body)

    await api_calls.answer_then_settle(call, result, answer)


def _upstream() -> UpstreamClient:
    """The upstream client for a call, whose retries end within
    :data:`UPSTREAM_RETRY_BUDGET_S` of its first attempt, attempts and waits together (a retry
    that would end past it, judged by the attempt before, is not made)."""
    client = upstream_client()
    return UpstreamClient(
        replace(
            client.config,
            retry_budget_s=UPSTREAM_RETRY_BUDGET_S,
            retry_budget_counts_attempts=True,
        )
    )


async def _answer_of(call: Call) -> ChatResult:
    """The upstream's answer to a non-streamed call, read from a stream it assembles: a call
    stopped on the way (its client left, a shutdown) knows what had been produced, and is
    charged it (a non-streamed upstream call would tell nothing until its end)."""
    request = call.request
    events = _upstream().stream_chat(call.target, request.messages, request.params, buffered=True)
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, Completed):
                return event.result
    raise BadResponse(detail="the stream ended without its answer")  # stream_chat never does


_INTERNAL_ERROR = api_wire.error_envelope(
    500, "Something went wrong on our side.", code="internal_error"
)
#: A non-streamed answer whose status went out before its body: no length, as DeepSeek's.
_JSON_WAITING_HEADERS = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
    (b"x-content-type-options", b"nosniff"),
]


def _json_bytes(envelope: api_wire.ErrorEnvelope) -> bytes:
    return api_wire.dumps(envelope).encode()


class _SlowAnswer:
    """Blank lines ahead of a non-streamed answer the upstream (or its settlement) takes long
    to give.

    DeepSeek keeps a queued non-streaming request's connection open by writing empty lines
    before the JSON body (``deepseek-api.md`` §4.5); JSON parsers skip them. We do the same:
    a call still waiting after :data:`FIRST_OUTPUT_WAIT_S` gets its 200 and a ``\\n``, then a
    ``\\n`` after every 5-10 s of silence (:class:`_Heartbeat`), and the body when it comes,
    so clients and proxies with a short read timeout keep waiting. A call answered within the
    wait (nearly all, and every refusal made at once) keeps its status and its length; one that
    fails after the 200 went out can only say so in the body, with the error envelope
    (:meth:`fail`), as a failed stream's last event does. Costs a timer per call, nothing more
    unless it fires.

    With ``stream``, the same for a stream refused before its first event whose settlement
    outlasts the wait: its 200 and ``: keep-alive`` comments, and the refusal as the stream's
    error event.
    """

    __slots__ = ("_heartbeat", "_starting", "_stream", "_timer", "response")

    def __init__(
        self, response: _Response, *, stream: bool = False, delay: float = FIRST_OUTPUT_WAIT_S
    ) -> None:
        self.response = response
        self._stream = stream
        self._starting: asyncio.Task[None] | None = None
        self._heartbeat: _Heartbeat | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            delay, self._start_waiting
        )

    def _start_waiting(self) -> None:
        self._timer = None
        self._starting = asyncio.ensure_future(self._send_status())

    async def _send_status(self) -> None:
        response = self.response
        if self._stream:
            headers, keepalive = _SSE_HEADERS, api_wire.KEEPALIVE
        else:
            headers, keepalive = _JSON_WAITING_HEADERS, b"\n"
        await response.start(200, headers)
        await response.send({"type": "http.response.body", "body": keepalive, "more_body": True})
        self._heartbeat = _Heartbeat(response.send, keepalive)

    async def stop(self) -> None:
        """Nothing more from here: the status is either still to send, or it went out (the
        answer's body follows it)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._starting is not None:
            starting, self._starting = self._starting, None
            # Let a status already on its way out get there: the body must follow it.
            with contextlib.suppress(Exception):
                await asyncio.shield(starting)
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None

    async def fail(self, envelope: api_wire.ErrorEnvelope) -> None:
        """End an answer whose 200 went out with the error envelope as its body."""
        self.response.stream_error = envelope["error"]["code"]
        render = api_wire.error_event if self._stream else _json_bytes
        body = render(envelope)
        await self.response.send({"type": "http.response.body", "body": body})


async def _stream(call: Call, response: _Response) -> None:
    """A streamed completion: upstream events in, DeepSeek chunks out, settled exactly once."""
    request = call.request
    events: AsyncGenerator[StreamEvent, None] = _upstream().stream_chat(
        call.target, request.messages, request.params
    )
    first = asyncio.ensure_future(_next_event(events))
    outcome = "cancelled"  # leaving by any other way than those below: the client left
    result: ChatResult | None = None
    text: list[str] = []
    reasoning: list[str] = []
    # Tool calls by index: (id, name, argument fragments), charged too if the stream ends early.
    tool_calls: dict[int, tuple[str, str, list[str]]] = {}
    output_started = False

    def partial() -> ChatResult:
        calls = [
            ToolCall(index, call_id, name, "".join(arguments))
            for index, (call_id, name, arguments) in sorted(tool_calls.items())
        ]
        return ChatResult(text="".join(text), reasoning="".join(reasoning), tool_calls=calls)

    heartbeat: _Heartbeat | None = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FIRST_OUTPUT_WAIT_S
    try:
        await asyncio.wait((first,), timeout=FIRST_OUTPUT_WAIT_S)
        if first.done() and (error := first.exception()) is not None:
            # Failed before any output: a status of its own, not a 200; unless settling it
            # outlasts the wait (a database outage): then the 200 and keep-alives while it
            # waits, and the failure as the stream's error event.
            outcome = "failed"
            waiting = _SlowAnswer(response, stream=True, delay=max(0.0, deadline - loop.time()))
            if not isinstance(error, UpstreamError):
                # Our own bug: logged before the settlement (which may wait out an outage, or
                # fail), once; the provider took the call, so what it used is charged.
                logger.error("API stream failed", exc_info=error)
                await _settle_waiting(call, outcome, partial(), waiting)
                if response.status:
                    await waiting.fail(_INTERNAL_ERROR)
                else:
                    await response.json(500, _json_bytes(_INTERNAL_ERROR))
                return
            result = _received(error, error.partial)
            await _settle_waiting(call, outcome, result, waiting)
            if response.status:
                await waiting.fail(_upstream_envelope(error))
            else:
                await response.upstream_error(error)
            return
        await response.start(200, _SSE_HEADERS)
        send = response.send
        if not first.done():
            # Still waiting: the headers go out with a keep-alive (the heartbeat sends more).
            await send(
                {"type": "http.response.body", "body": api_wire.KEEPALIVE, "more_body": True}
            )
        heartbeat = _Heartbeat(send, api_wire.KEEPALIVE)
        await asyncio.wait((first,))
        writer = api_wire.ChunkWriter(
            model_name=call.model_name,
            fingerprint=call.fingerprint,
            thinking=call.target.thinking,
            include_usage=request.include_usage,
        )
        want_logprobs = request.logprobs
        usage: dict[str, Any] | None = None
        finish: str | None = None
        out = [writer.role()]
        try:
            # Inside the try: the first event may be the failure itself, after the keep-alive.
            event: StreamEvent | None = first.result()
            while event is not None:
                following: StreamEvent | None = None
                if isinstance(event, ContentDelta | ReasoningDelta):
                    output_started = True
                    logprobs = None
                    if want_logprobs:
                        # Logprobs of a chunk come as the event right after its text.
                        following = await anext(events)
                        if isinstance(following, LogprobsDelta):
                            is_text = isinstance(event, ContentDelta)
                            logprobs = following.content if is_text else following.reasoning
                            following = None
                    if isinstance(event, ContentDelta):
                        text.append(event.text)
                        out.append(writer.content(event.text, logprobs))
                    else:
                        reasoning.append(event.text)
                        out.append(writer.reasoning(event.text, logprobs))
                elif isinstance(event, ToolCallDelta):
                    output_started = True
                    parts = tool_calls.setdefault(
                        event.index, (event.id or "", event.name or "", [])
                    )
                    parts[2].append(event.arguments_fragment)
                    out.append(writer.tool_call(event))
                elif isinstance(event, LogprobsDelta):
                    out.append(writer.logprobs_only(event.content, event.reasoning))
                elif isinstance(event, Finish):
                    finish = event.reason
                elif isinstance(event, Usage):
                    usage = event.usage
                elif isinstance(event, Completed):
                    result = event.result
                    if usage is None:
                        usage = result.usage or _estimated_usage(call, result)
                    outcome = "complete"
                    out.append(writer.finish(finish or result.finish_reason, usage))
                    out.append(api_wire.DONE)
                    heartbeat.stop()
                    last = {"type": "http.response.body", "body": b"".join(out)}
                    await api_calls.answer_then_settle(
                        call, result, functools.partial(response.answer, last)
                    )
                    return
                if out:
                    body = b"".join(out) if len(out) > 1 else out[0]
                    out = []
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                    heartbeat.sent += 1
                event = following if following is not None else await anext(events)
        except asyncio.CancelledError as stop:
            # The client left: the provider's usage, if its chunk had come, is what is charged.
            received = getattr(stop, "partial", None)
            if received is not None and received.usage:
                result = received
            raise
        except UpstreamError as error:
            outcome = "interrupted" if output_started else "failed"
            result = _received(error, error.partial or partial(), output_started)
            envelope = _upstream_envelope(error)
        except Exception:
            outcome = "failed"
            result = partial()
            logger.exception("API stream failed")
            envelope = _INTERNAL_ERROR
        # Failed after the 200: settled first (as at [DONE]), then the error event ends it.
        await _stop_upstream(first, events)
        await _settle(call, outcome, result)
        response.stream_error = envelope["error"]["code"]
        heartbeat.stop()
        await send({"type": "http.response.body", "body": api_wire.error_event(envelope)})
    finally:
        if heartbeat is not None:
            heartbeat.stop()
        await _stop_upstream(first, events)
        await _settle(call, outcome, result or partial())


class _Heartbeat:
    """Keep-alives on a response whose status has gone out, while nothing else does.

    One task per response, waking every half :data:`KEEPALIVE_INTERVAL_S`: if the response
    sent nothing since its last wake it sends ``keepalive``. So a keep-alive follows between
    half of the interval and all of it of silence, and real events are never held back or
    reordered (they are sent by the response's own task, as they come). The response counts
    what it sends in :attr:`sent`; that increment is all a chunk costs (no timer per chunk).
    """

    __slots__ = ("_task", "sent")

    def __init__(self, send: Send, keepalive: bytes) -> None:
        self.sent = 0
        self._task = asyncio.ensure_future(self._beat(send, keepalive))

    async def _beat(self, send: Send, keepalive: bytes) -> None:
        message = {"type": "http.response.body", "body": keepalive, "more_body": True}
        seen = self.sent
        while True:
            await asyncio.sleep(KEEPALIVE_INTERVAL_S / 2)
            if self.sent == seen:
                try:
                    await send(message)
                except Exception:  # the response's own next send meets the same failure
                    return
                self.sent += 1
            seen = self.sent

    def stop(self) -> None:
        """No keep-alive after this (call it before a response's last message)."""
        self._task.cancel()


async def _next_event(events: AsyncGenerator[StreamEvent, None]) -> StreamEvent:
    return await anext(events)


async def _stop_upstream(
    first: asyncio.Future[StreamEvent], events: AsyncGenerator[StreamEvent, None]
) -> None:
    """Close the upstream call (a no-op once it has ended); the upstream sees the hang-up."""
    if not first.done():
        first.cancel()
        # Swallowed even if it is our own cancellation: settlement must still run.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await first
    with contextlib.suppress(Exception):
        await events.aclose()
