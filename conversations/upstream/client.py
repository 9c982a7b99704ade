"""The DeepSeek HTTP client: one shared connection pool, retries, timeouts, typed results.

Use it like this::

    client = UpstreamClient(UpstreamConfig(base_url=..., api_key=...))
    async with contextlib.aclosing(client.stream_chat(target, messages, params)) as events:
        async for event in events:
            ...                         # ReasoningDelta, ContentDelta, …, Completed
    result = await client.complete_chat(target, messages, params)   # non-streaming

and call :func:`aclose_shared_client` when the event loop shuts down.

Retries happen only before the first delta, only for retryable failures, at most
``max_retries`` times, with exponential backoff and jitter (or the upstream's ``Retry-After``),
and the waits together stay within ``retry_budget_s`` (with ``retry_budget_counts_attempts``:
the next attempt, as long as the last, ends within it of the first, attempts and waits
together). Once output has started, any failure is
raised with ``error.partial`` holding what was received.

Three clocks guard every call (all in :class:`UpstreamConfig`):

* ``deadline`` — the whole call, retries included;
* ``queue_timeout`` — from the start of the call to the first delta; keep-alives are welcome
  until then;
* ``idle_timeout`` — network silence. Before the first delta any byte (a keep-alive too) is
  progress; after it only data events are, so a stream that sends nothing but keep-alives
  is reported as :class:`Stalled`.

Time the caller spends between two events is never counted as upstream idleness: the clocks
only cancel the task while it is waiting on the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from .assemble import StreamAssembler, parse_completion_body
from .errors import (
    BadResponse,
    QueueTimedOut,
    RateLimited,
    Stalled,
    TimedOut,
    Truncated,
    Unreachable,
    UpstreamError,
    error_from_response,
    redact,
    renamed,
)
from .events import ChatResult, Completed, StreamEvent, Usage
from .request import ModelTarget, build_chat_request, is_json_mode
from .sse import LineTooLong, SSEDecoder

logger = logging.getLogger("conversations.upstream")

T = TypeVar("T")

#: Failures of the connection itself, whichever layer reports them.
_TRANSPORT_ERRORS = (httpx.TransportError, aiohttp.ClientError, OSError)

#: A non-streaming body larger than this is refused rather than buffered.
MAX_BODY_BYTES = 64 * 1024 * 1024
#: How much of an error body is read for the log.
MAX_ERROR_BODY_BYTES = 64 * 1024


@lru_cache(maxsize=64)
def _parsed_url(url: str) -> httpx.URL:
    """The few upstream URLs, parsed once (httpx would parse the string on every request)."""
    return httpx.URL(url)


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """How to reach the upstream, and the limits of every call (seconds).

    The key is excluded from ``repr`` so that logging a config cannot leak it.
    """

    base_url: str
    api_key: str = field(repr=False)
    connect_timeout: float = 10
    idle_timeout: float = 180
    queue_timeout: float = 600
    deadline: float = 900
    max_connections: int = 1000
    max_retries: int = 2
    retry_budget_s: float = 20.0
    # Whether the budget counts the attempts as well as the waits (``_spent``): for a caller
    # whose status goes out at a fixed time (the API's), a retry must end within it; the chat
    # counts the waits only, so that an upstream slow to fail is still tried again.
    retry_budget_counts_attempts: bool = False
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0


@dataclass(frozen=True, slots=True)
class RetryNotice:
    """Given to ``on_retry`` before each retry: which attempt failed, why, how long we wait."""

    attempt: int
    error: UpstreamError
    delay_s: float


OnRetry = Callable[[RetryNotice], None]


# --- the shared HTTP client -------------------------------------------------------------------

_shared_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing: see :class:`_UpstreamHttpClient`."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class _UpstreamHttpClient(httpx.AsyncClient):
    """An httpx client without cookies. The upstream is an API called with a key on behalf of
    every user of the process: a cookie it sets must not ride along on everyone's later calls.
    (httpx parsed each response's headers for cookies through the standard library's cookie
    jar, ~3% of an API worker's CPU: bench/RESULTS.md, "Eighth session".)"""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        if cookies:
            raise ValueError("the upstream client keeps no cookies")


_NO_COOKIES = _NoCookies()


def create_http_client(
    *, max_connections: int = 1000, connect_timeout: float = 10.0
) -> httpx.AsyncClient:
    """A new httpx client over the aiohttp transport, set up for SSE.

    ``Accept-Encoding: identity`` because a compressing hop may buffer and re-batch deltas;
    no read timeout at this layer (the call's own clocks handle silence); ``trust_env`` off so
    that proxy variables cannot silently move traffic off the aiohttp transport; no cookies
    (:class:`_UpstreamHttpClient`).
    """
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=30.0,
    )
    ssl_context = httpx.create_ssl_context()

    def session() -> aiohttp.ClientSession:
        # Created on the first request, inside the loop that will use it; aiohttp's own jar
        # would keep cookies too.
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=max_connections, keepalive_timeout=limits.keepalive_expiry, ssl=ssl_context
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    return _UpstreamHttpClient(
        transport=AiohttpTransport(limits=limits, client=session),
        headers={"Accept-Encoding": "identity"},
        timeout=httpx.Timeout(connect=connect_timeout, read=None, write=None, pool=None),
        trust_env=False,
        follow_redirects=False,
    )


def get_shared_client(config: UpstreamConfig | None = None) -> httpx.AsyncClient:
    """The process's client for the running event loop, created on first use.

    Keyed by loop because an aiohttp session belongs to the loop that created it (tests and
    management commands start new loops). The first caller's ``max_connections`` sizes the pool.
    """
    loop = asyncio.get_running_loop()
    client = _shared_clients.get(loop)
    if client is None or client.is_closed:
        client = create_http_client(
            max_connections=config.max_connections if config else 1000,
            connect_timeout=config.connect_timeout if config else 10.0,
        )
        _shared_clients[loop] = client
    return client


async def aclose_shared_client() -> None:
    """Close the running loop's shared client (call on shutdown)."""
    client = _shared_clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


# --- the clocks -------------------------------------------------------------------------------


def _add_usage(
    total: Mapping[str, Any] | None, usage: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """Two usage objects added field by field (the numbers of nested details too), in the
    order of ``usage``'s fields; None when neither is given."""
    if not usage:
        return dict(total) if total else None
    if not total:
        return dict(usage)
    added: dict[str, Any] = {}
    for key in [*usage, *(k for k in total if k not in usage)]:
        a, b = total.get(key), usage.get(key)
        if isinstance(a, Mapping) or isinstance(b, Mapping):
            added[key] = _add_usage(
                a if isinstance(a, Mapping) else None, b if isinstance(b, Mapping) else None
            )
        elif a is not None and b is not None and _is_count(a) and _is_count(b):
            added[key] = a + b
        else:
            added[key] = b if b is not None else a
    return added


def _spent(config: UpstreamConfig, waited: float, began: float, attempt_began: float) -> float:
    """What a call has spent of its retry budget: its waits; or, where the budget counts the
    attempts too (``retry_budget_counts_attempts``), the seconds it will have spent from its
    first attempt once its next attempt fails as the last one did (the attempts and waits so
    far, and the last attempt's length again). Counted by waits alone, an API call retried a
    429 that took 1.5 s and asked for 2 s, and heard the second refusal after its status had
    gone out."""
    if not config.retry_budget_counts_attempts:
        return waited
    now = time.monotonic()
    return (now - began) + (now - attempt_began)


def _is_count(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fold_billed(
    result: ChatResult, billed: dict[str, Any] | None, *, output_started: bool
) -> None:
    """Add what earlier attempts were billed to the usage ``result`` reports: to the provider's
    own count of this attempt, or as all of it when this attempt produced nothing (refused, or
    stopped before any output). An attempt with output but no count is left to the caller's
    estimate, which then misses the earlier attempts (rare: a retry, then a cut stream)."""
    if billed is None:
        return
    if result.usage:
        result.usage = _add_usage(billed, result.usage)
    elif not output_started or not result.output_text:
        result.usage = dict(billed)


def _with_billed(event: StreamEvent, billed: dict[str, Any] | None) -> StreamEvent:
    """A closing event of a stream, its usage with what earlier attempts were billed."""
    if billed is None:
        return event
    if isinstance(event, Usage):
        return Usage(_add_usage(billed, event.usage) or {})
    if isinstance(event, Completed):
        _fold_billed(event.result, billed, output_started=True)
    return event


class _Watchdog:
    """The deadline, the queueing cap and the idle timer of one call.

    A single lazily re-armed timer: progress only updates numbers, and when the timer fires it
    re-arms itself if the limit has moved. It cancels the task only while the task is awaiting
    the network inside :meth:`guard`, so it can never interrupt the caller between events.
    """

    __slots__ = (
        "_cancelling",
        "_fired",
        "_handle",
        "_handle_at",
        "_task",
        "deadline_at",
        "idle_spent",
        "idle_timeout",
        "loop",
        "output_started",
        "queue_at",
        "read_started",
        "reading",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, config: UpstreamConfig) -> None:
        now = loop.time()
        self.loop = loop
        self.deadline_at = now + config.deadline
        self.queue_at = now + config.queue_timeout
        self.idle_timeout = config.idle_timeout
        self.output_started = False
        self.idle_spent = 0.0
        self.read_started = now
        self.reading = False
        self._task: asyncio.Task[Any] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._handle_at = math.inf
        self._fired: str | None = None
        self._cancelling = 0

    def _limit(self) -> tuple[float, str]:
        when, kind = self.deadline_at, "deadline"
        idle_at = self.read_started + self.idle_timeout - self.idle_spent
        if idle_at < when:
            when, kind = idle_at, "idle"
        if not self.output_started and self.queue_at < when:
            when, kind = self.queue_at, "queue"
        return when, kind

    def _error(self, kind: str) -> UpstreamError:
        if kind == "deadline":
            return TimedOut("The model provider did not finish within the time allowed.")
        if kind == "queue":
            return TimedOut("The model provider did not start answering within the time allowed.")
        return Stalled(
            detail="no data for the idle timeout"
            + (" (keep-alives only)" if self.output_started else "")
        )

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self.loop.call_at(when, self._on_timer)
        self._handle_at = when

    def _on_timer(self) -> None:
        self._handle = None
        self._handle_at = math.inf
        if not self.reading or self._task is None:
            return  # the next guard() re-arms
        when, kind = self._limit()
        if self.loop.time() < when:
            self._arm(when)
            return
        self._fired = kind
        self._cancelling = self._task.cancelling()
        self._task.cancel()

    async def guard(self, awaitable: Awaitable[T]) -> T:
        """Await network I/O under the call's clocks; a passed limit raises a typed error."""
        now = self.loop.time()
        self.read_started = now
        when, kind = self._limit()
        if now >= when:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise self._error(kind)
        if when < self._handle_at:
            self._arm(when)
        self._task = asyncio.current_task()
        self.reading = True
        try:
            return await awaitable
        except asyncio.CancelledError:
            fired, self._fired = self._fired, None
            task = self._task
            if fired is not None and task is not None and task.uncancel() <= self._cancelling:
                raise self._error(fired) from None
            raise
        finally:
            self.reading = False
            self.idle_spent += self.loop.time() - self.read_started

    def progress(self) -> None:
        """Something that counts as progress arrived; the idle clock restarts."""
        self.idle_spent = 0.0

    def start_output(self) -> None:
        """The first delta arrived: the queueing cap no longer applies."""
        self.output_started = True
        self.idle_spent = 0.0

    def new_attempt(self) -> None:
        self.idle_spent = 0.0

    def seconds_left(self) -> float:
        return self.deadline_at - self.loop.time()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
            self._handle_at = math.inf


AFTER_DONE_WAIT_SECONDS = 0.25
"""How long a stream's end of body is waited for after its ``[DONE]``: it normally comes with
it (the chunked encoding's last chunk), within microseconds."""


async def _read_past_done(chunks: AsyncIterator[bytes]) -> None:
    """Read a stream's body to its end once ``[DONE]`` has come, rather than close it there.

    The answer is whole already; this is for the connection and the event loop. A response
    read to its end goes back to aiohttp's pool, where one closed mid-body (its last chunk not
    yet read) is closed, and the next call to the upstream opens a new connection (with TLS,
    a handshake). And httpx's generators under ``aiter_raw`` (three of them) finish, where one
    left suspended is finalized by the event loop: a self-pipe write, a wake-up and a task
    each, ~60 µs of CPU per call (bench/RESULTS.md, "Nineteenth session"). An upstream that
    keeps the body open after ``[DONE]`` is not waited for past
    :data:`AFTER_DONE_WAIT_SECONDS`, and nothing it sends then is read as output.
    """
    with contextlib.suppress(TimeoutError, *_TRANSPORT_ERRORS):
        async with asyncio.timeout(AFTER_DONE_WAIT_SECONDS):
            while await anext(chunks, None) is not None:
                pass


# --- the client -------------------------------------------------------------------------------


class UpstreamClient:
    """Calls one DeepSeek-compatible upstream. Knows nothing of Django.

    ``http`` lets a caller (a test, a benchmark) supply its own httpx client; by default the
    shared client of the running loop is used, so one instance can serve several loops.
    """

    def __init__(
        self,
        config: UpstreamConfig,
        *,
        http: httpx.AsyncClient | None = None,
        on_retry: OnRetry | None = None,
    ) -> None:
        self.config = config
        self._http = http
        self._on_retry = on_retry
        self._base = config.base_url.rstrip("/")
        self._timeout = httpx.Timeout(
            connect=config.connect_timeout, read=None, write=None, pool=None
        )

    def __repr__(self) -> str:
        return f"UpstreamClient(base_url={self.config.base_url!r})"

    def _base_for(self, beta: bool) -> str:
        """The base URL, or its beta sibling (``…/beta``; a ``/v1`` suffix is not part of it),
        which serves chat prefix completion (continuing a cut-off answer)."""
        if not beta:
            return self._base
        root = self._base[: -len("/v1")] if self._base.endswith("/v1") else self._base
        return root + "/beta"

    # -- public calls --------------------------------------------------------------------------

    async def stream_chat(
        self,
        target: ModelTarget,
        messages: Iterable[Mapping[str, Any]],
        params: Mapping[str, Any] | None = None,
        *,
        on_retry: OnRetry | None = None,
        beta: bool = False,
        buffered: bool = False,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Stream one chat completion as typed events, ending with ``Completed``.

        ``buffered``: the caller shows nothing before ``Completed`` (a non-streamed answer
        read from a stream, so that a stop knows what was produced): a failure after output
        has started is then retried as one before it.

        Wrap it in ``contextlib.aclosing`` (or call ``aclose()``): closing the generator or
        cancelling the task that iterates it closes the HTTP response at once, so the upstream
        sees the disconnect. Raises an :class:`UpstreamError`; after output has started the
        error's ``partial`` holds the text, reasoning and tool calls received so far; a
        cancelled stream's ``CancelledError`` carries the same ``partial`` (with the provider's
        usage when its chunk came before the end of the stream).
        """
        config = self.config
        http = self._http or get_shared_client(config)
        body = build_chat_request(target, messages, params, stream=True)
        payload = json.dumps(body, ensure_ascii=False).encode()
        json_mode = is_json_mode(params)
        headers = self._headers("text/event-stream")
        url = self._base_for(beta) + "/chat/completions"
        watchdog = _Watchdog(asyncio.get_running_loop(), config)
        attempts = 0
        began, waited = time.monotonic(), 0.0  # what the retry budget counts (_spent)
        # What the provider billed for attempts that were answers in name only (cut short for
        # want of capacity, blank JSON) and were tried again: charged with the call's own.
        billed: dict[str, Any] | None = None
        try:
            while True:
                attempts += 1
                watchdog.new_attempt()
                attempt_began = time.monotonic()
                assembler = StreamAssembler(api_key=config.api_key, hold_blank_content=json_mode)
                decoder = SSEDecoder()
                try:
                    response = await self._send(http, "POST", url, payload, headers, watchdog)
                    try:
                        if response.status_code != 200:
                            raise await self._error_from(response, watchdog)
                        chunks = response.aiter_raw().__aiter__()
                        data_events = 0
                        while True:
                            try:
                                raw = await watchdog.guard(anext(chunks, None))
                            except _TRANSPORT_ERRORS as exc:
                                raise Truncated(detail=self._describe(exc)) from exc
                            if raw is None:
                                break
                            try:
                                payloads = decoder.feed(raw)
                            except LineTooLong:
                                raise BadResponse(detail="an SSE line was too long") from None
                            if payloads:
                                data_events += len(payloads)
                                for data in payloads:
                                    for event in assembler.feed(data):
                                        yield event
                                if assembler.output_started and not watchdog.output_started:
                                    watchdog.start_output()
                                else:
                                    watchdog.progress()
                            elif not watchdog.output_started:
                                watchdog.progress()  # keep-alives count only before output
                            if decoder.done:
                                await _read_past_done(chunks)
                                break
                    finally:
                        await response.aclose()
                    if not decoder.done:
                        if data_events == 0 and decoder.comments:
                            raise QueueTimedOut(detail="closed after keep-alives, no data")
                        raise Truncated(detail=f"EOF without [DONE] after {data_events} events")
                    for event in assembler.finish(json_mode=json_mode, attempts=attempts):
                        yield _with_billed(event, billed)
                    return
                except asyncio.CancelledError as stop:
                    # Stopped (a user's Stop, a shutdown): what had been received goes with it,
                    # so the caller can charge the provider's usage if its chunk had come.
                    partial = assembler.result(attempts)
                    _fold_billed(partial, billed, output_started=assembler.output_started)
                    stop.partial = partial  # type: ignore[attr-defined]
                    raise
                except UpstreamError as error:
                    error.partial = assembler.result(attempts)
                    delay = None
                    if buffered or not assembler.output_started:
                        delay = self._retry_delay(
                            error,
                            attempts,
                            _spent(self.config, waited, began, attempt_began),
                            watchdog,
                        )
                    if delay is None:
                        _fold_billed(error.partial, billed, output_started=assembler.output_started)
                        self._log_failure(error, attempts, output_started=assembler.output_started)
                        _name_the_model(error, target)
                        raise
                    billed = _add_usage(billed, error.partial.usage)  # billed, and retried
                    self._notify_retry(on_retry, RetryNotice(attempts, error, delay))
                    waited += delay
                    await asyncio.sleep(delay)
        finally:
            watchdog.close()

    async def complete_chat(
        self,
        target: ModelTarget,
        messages: Iterable[Mapping[str, Any]],
        params: Mapping[str, Any] | None = None,
        *,
        on_retry: OnRetry | None = None,
        beta: bool = False,
    ) -> ChatResult:
        """One non-streaming chat completion (same retries and clocks as streaming)."""
        body = build_chat_request(target, messages, params, stream=False)
        payload = json.dumps(body, ensure_ascii=False).encode()
        json_mode = is_json_mode(params)
        api_key = self.config.api_key

        def parse(raw: bytes) -> ChatResult:
            return parse_completion_body(raw, api_key=api_key, json_mode=json_mode)

        try:
            result, attempts = await self._request(
                "POST", self._base_for(beta) + "/chat/completions", payload, parse, on_retry
            )
        except UpstreamError as error:
            _name_the_model(error, target)
            raise
        result.attempts = attempts
        return result

    async def list_models(self) -> dict[str, Any]:
        """``GET /models``, parsed."""
        result, _ = await self._request("GET", "/models", None, _parse_json_object, None)
        return result

    async def get_balance(self) -> dict[str, Any]:
        """``GET /user/balance``, parsed."""
        result, _ = await self._request("GET", "/user/balance", None, _parse_json_object, None)
        return result

    # -- internals -----------------------------------------------------------------------------

    def _headers(self, accept: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.config.api_key}",
            "Content-Type": "application/json",
            "Accept": accept,
            "Accept-Encoding": "identity",
        }

    def _describe(self, exc: BaseException) -> str:
        return redact(f"{type(exc).__name__}: {exc}", self.config.api_key)

    async def _send(
        self,
        http: httpx.AsyncClient,
        method: str,
        url: str,
        payload: bytes | None,
        headers: dict[str, str],
        watchdog: _Watchdog,
    ) -> httpx.Response:
        request = http.build_request(
            method, _parsed_url(url), content=payload, headers=headers, timeout=self._timeout
        )
        try:
            return await watchdog.guard(http.send(request, stream=True))
        except _TRANSPORT_ERRORS as exc:
            raise Unreachable(detail=self._describe(exc)) from exc

    async def _error_from(self, response: httpx.Response, watchdog: _Watchdog) -> UpstreamError:
        body = bytearray()
        try:
            chunks = response.aiter_raw().__aiter__()
            while len(body) < MAX_ERROR_BODY_BYTES:
                raw = await watchdog.guard(anext(chunks, None))
                if raw is None:
                    break
                body += raw
        except _TRANSPORT_ERRORS:
            pass  # the status alone decides; the body is only for the log
        return error_from_response(
            response.status_code, bytes(body), response.headers, self.config.api_key
        )

    async def _read_body(self, response: httpx.Response, watchdog: _Watchdog) -> bytes:
        body = bytearray()
        chunks = response.aiter_raw().__aiter__()
        while True:
            try:
                raw = await watchdog.guard(anext(chunks, None))
            except _TRANSPORT_ERRORS as exc:
                raise Truncated(detail=self._describe(exc)) from exc
            if raw is None:
                return bytes(body)
            body += raw
            if len(body) > MAX_BODY_BYTES:
                raise BadResponse(detail="response body too large")
            # Leading blank lines are the queue's keep-alives; the first other byte is output.
            if not watchdog.output_started and not raw.isspace():
                watchdog.start_output()
            else:
                watchdog.progress()

    async def _request(
        self,
        method: str,
        path: str,
        payload: bytes | None,
        parse: Callable[[bytes], T],
        on_retry: OnRetry | None,
    ) -> tuple[T, int]:
        """A non-streaming call with retries; ``parse`` runs inside the retry loop."""
        http = self._http or get_shared_client(self.config)
        headers = self._headers("application/json")
        url = path if path.startswith("http") else self._base + path
        watchdog = _Watchdog(asyncio.get_running_loop(), self.config)
        attempts = 0
        began, waited = time.monotonic(), 0.0  # what the retry budget counts (_spent)
        billed: dict[str, Any] | None = None  # as in stream_chat
        try:
            while True:
                attempts += 1
                watchdog.new_attempt()
                attempt_began = time.monotonic()
                try:
                    response = await self._send(http, method, url, payload, headers, watchdog)
                    try:
                        if response.status_code != 200:
                            raise await self._error_from(response, watchdog)
                        body = await self._read_body(response, watchdog)
                    finally:
                        await response.aclose()
                    parsed = parse(body)
                    if isinstance(parsed, ChatResult):
                        _fold_billed(parsed, billed, output_started=True)
                    return parsed, attempts
                except UpstreamError as error:
                    delay = self._retry_delay(
                        error, attempts, _spent(self.config, waited, began, attempt_began), watchdog
                    )
                    if delay is None:
                        if billed is not None:
                            if error.partial is None:
                                error.partial = ChatResult(attempts=attempts)
                            _fold_billed(error.partial, billed, output_started=False)
                        self._log_failure(error, attempts, output_started=False)
                        raise
                    if error.partial is not None:
                        billed = _add_usage(billed, error.partial.usage)  # billed, and retried
                    self._notify_retry(on_retry, RetryNotice(attempts, error, delay))
                    waited += delay
                    watchdog.output_started = False
                    await asyncio.sleep(delay)
        finally:
            watchdog.close()

    def _retry_delay(
        self, error: UpstreamError, attempts: int, spent: float, watchdog: _Watchdog
    ) -> float | None:
        """Seconds to wait before the next attempt, or None when the error must be raised.
        ``spent``: what the call will have spent once the next attempt fails as this one did
        (:func:`_spent`); with the wait, it stays within the retry budget."""
        config = self.config
        if not error.retryable or attempts > config.max_retries:
            return None
        budget_left = config.retry_budget_s - spent
        retry_after = error.retry_after if isinstance(error, RateLimited) else None
        if retry_after is not None:
            delay = retry_after
            if delay > budget_left:
                return None  # cannot honour the upstream's wait within our budget
        else:
            ceiling = min(config.backoff_max_s, config.backoff_base_s * 2 ** (attempts - 1))
            delay = ceiling / 2 + random.uniform(0, ceiling / 2)
            if budget_left <= 0:
                return None
            delay = min(delay, budget_left)
        if delay >= watchdog.seconds_left():
            return None
        return delay

    def _notify_retry(self, on_retry: OnRetry | None, notice: RetryNotice) -> None:
        error = notice.error
        logger.warning(
            "upstream attempt %d failed (%s, %s); retrying in %.2fs",
            notice.attempt,
            error.code,
            error.detail or error.message,
            notice.delay_s,
        )
        callback = on_retry or self._on_retry
        if callback is not None:
            callback(notice)

    def _log_failure(self, error: UpstreamError, attempts: int, *, output_started: bool) -> None:
        logger.log(
            logging.ERROR if error.needs_admin else logging.INFO,
            "upstream call failed after %d attempt(s)%s: %s (%s)",
            attempts,
            " with output started" if output_started else "",
            error.code,
            error.detail or error.message,
        )


def _name_the_model(error: UpstreamError, target: ModelTarget) -> None:
    """The error's message naming the model as the caller does (``target.name``), where the
    provider's explanation named it by the upstream id; the log's detail keeps the id."""
    if target.name is not None:
        error.message = renamed(error.message, target.upstream_model, target.name)


def _parse_json_object(body: bytes) -> dict[str, Any]:
    stripped = body.strip()
    if not stripped:
        raise Truncated(detail="empty body")
    try:
        data = json.loads(stripped)
    except ValueError:
        raise Truncated(detail="the body was cut or is not JSON") from None
    if not isinstance(data, dict):
        raise BadResponse(detail="the body is not a JSON object")
    return data
