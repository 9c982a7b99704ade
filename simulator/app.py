"""The ASGI application: routing, auth, faults, queueing, pacing and the wire protocol."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, replace
from typing import Any

from simulator.cache import PrefixCache
from simulator.config import LEGACY_CONTEXT, SimulatorConfig, models_for
from simulator.directives import Directives, collect_directives
from simulator.errors import (
    ApiError,
    auth_format,
    bad_request,
    concurrency_exceeded,
    context_overflow,
    deserialization,
    insufficient_balance,
    invalid_key,
    server_error,
    server_overloaded,
)
from simulator.generation import Reply, conversation_rng, generate_reply
from simulator.validation import ChatRequest, decode_body, parse_chat_request
from simulator.wire import (
    DONE,
    Envelope,
    Usage,
    build_usage,
    completion_body,
    dumps,
    stream_events,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

STREAM_KEEPALIVE = b": keep-alive\n\n"
BODY_KEEPALIVE = b"\n"
# The concurrency limit observed at a near-empty balance (§6); used when a test forces a 429
# without configuring max_concurrency.
OBSERVED_CONCURRENCY_LIMIT = 39

CHAT_PATHS = {"/chat/completions": False, "/v1/chat/completions": False}
BETA_CHAT_PATHS = {"/beta/chat/completions": True}
MODELS_PATHS = ("/models", "/v1/models")
BALANCE_PATHS = ("/user/balance", "/v1/user/balance")


class ClientWatch:
    """Notices when the client hangs up (or the server shuts down) while we are generating.

    uvicorn silently drops `send` after a disconnect, so without this a stalled or slow stream
    would keep running for a client that is long gone.
    """

    def __init__(self, receive: Receive) -> None:
        self.gone = asyncio.Event()
        self._task = asyncio.create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.gone.set()
                return

    @property
    def alive(self) -> bool:
        return not self.gone.is_set()

    async def wait_gone(self) -> None:
        await self.gone.wait()

    def close(self) -> None:
        self._task.cancel()


@dataclass
class Pace:
    queue_s: float
    first_token_latency_s: float
    tokens_per_s: float


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _raw_last_user_text(data: dict[str, Any]) -> str | None:
    """The last user message's text before validation, so faults fire even on bad requests."""
    messages = data.get("messages")
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "\n".join(
                    str(part.get("text", "")) for part in content if isinstance(part, dict)
                )
            return None
    return None


class SimulatorApp:
    """A fake DeepSeek API server; see simulator/README.md for the behaviour it offers."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._ids = random.Random(config.seed)
        self._cache = PrefixCache()
        self._active = 0
        self._fault_counts: dict[tuple[str, str], int] = {}
        self._watches: set[ClientWatch] = set()
        if config.profile == "legacy-2025":
            self.system_fingerprint = f"fp_{self._ids.getrandbits(40):010x}_prod0820_fp8_kvcache"
        else:
            self.system_fingerprint = f"{self._ids.getrandbits(128):032x}"

    # ---- lifecycle -------------------------------------------------------------------------

    def begin_shutdown(self) -> None:
        """Release stalled and queued requests so the server can stop promptly."""
        for watch in list(self._watches):
            watch.gone.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.begin_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ---- plumbing --------------------------------------------------------------------------

    def _new_uuid(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def _headers(self, content_type: bytes, length: int | None = None) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"content-type", content_type),
            (b"cache-control", b"no-cache"),
            (b"x-ds-trace-id", self._ids.getrandbits(128).to_bytes(16, "big").hex().encode()),
        ]
        if length is not None:
            headers.append((b"content-length", str(length).encode()))
        return headers

    async def _send_json(
        self,
        send: Send,
        status: int,
        body: bytes,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        headers = self._headers(b"application/json", len(body)) + (extra or [])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _send_error(self, send: Send, error: ApiError) -> None:
        extra = []
        if error.retry_after is not None:
            extra.append((b"retry-after", str(error.retry_after).encode()))
        await self._send_json(send, error.status, error.encoded(), extra)

    def _authenticate(self, headers: dict[str, str]) -> str:
        value = headers.get("authorization", "")
        scheme, _, key = value.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise auth_format()
        if self.config.api_key is None:
            if not key.startswith("sk-"):
                raise invalid_key(key)
        elif key != self.config.api_key:
            raise invalid_key(key)
        return key

    # ---- routing ---------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"].rstrip("/") or "/"
        method = scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        chat_paths = CHAT_PATHS | BETA_CHAT_PATHS
        expected = (
            "POST"
            if path in chat_paths
            else "GET"
            if path in MODELS_PATHS + BALANCE_PATHS
            else None
        )
        if expected is None:
            await self._send_error(send, ApiError(404, "Not Found"))
            return
        if method != expected:
            await self._send_error(send, ApiError(405, "Method Not Allowed"))
            return
        try:
            key = self._authenticate(headers)
        except ApiError as error:
            await self._send_error(send, error)
            return
        if path in MODELS_PATHS:
            await self._send_json(send, 200, self._models_body())
        elif path in BALANCE_PATHS:
            await self._send_json(send, 200, self._balance_body())
        else:
            body = await _read_body(receive)
            await self._chat(receive, send, headers, key, body, beta=chat_paths[path])

    def _models_body(self) -> bytes:
        data = [
            {"id": name, "object": "model", "owned_by": "deepseek"}
            for name in models_for(self.config.profile)
        ]
        return dumps({"object": "list", "data": data}).encode()

    def _balance_body(self) -> bytes:
        currency = "USD" if self.config.profile == "current-2026" else "CNY"
        return dumps(
            {
                "is_available": True,
                "balance_infos": [
                    {
                        "currency": currency,
                        "total_balance": "25.40",
                        "granted_balance": "5.00",
                        "topped_up_balance": "20.40",
                    }
                ],
            }
        ).encode()

    # ---- chat completions ------------------------------------------------------------------

    def _forced_fault(self, directives: Directives, marker: str, key: str) -> ApiError | None:
        if directives.fault is None:
            return None
        if directives.fault_times is not None:
            counter = (key, marker)
            seen = self._fault_counts.get(counter, 0)
            if seen >= directives.fault_times:
                return None
            self._fault_counts[counter] = seen + 1
        status = directives.fault
        if status == 400:
            context = 1_048_576 if self.config.profile == "current-2026" else LEGACY_CONTEXT
            return context_overflow(context, context, 4096)
        if status == 401:
            return invalid_key(key)
        if status == 402:
            return insufficient_balance()
        if status == 422:
            return deserialization("messages[0]: missing field `content` at line 1 column 42", 422)
        if status == 429:
            limit = self.config.max_concurrency or OBSERVED_CONCURRENCY_LIMIT
            return concurrency_exceeded(limit + 1, limit, directives.retry_after)
        if status == 500:
            return server_error()
        return server_overloaded()

    def _forced_finish(self, directives: Directives, marker: str, key: str) -> Directives:
        """``finish=`` with ``fault_times=N``: the first N requests of this text end so, the
        next ones as they would have (a retried insufficient_system_resource that succeeds)."""
        if directives.finish is None or directives.fault_times is None or directives.fault:
            return directives
        counter = (key, "finish\0" + marker)
        seen = self._fault_counts.get(counter, 0)
        if seen >= directives.fault_times:
            return replace(directives, finish=None)
        self._fault_counts[counter] = seen + 1
        return directives

    async def _chat(
        self,
        receive: Receive,
        send: Send,
        headers: dict[str, str],
        key: str,
        body: bytes,
        *,
        beta: bool,
    ) -> None:
        limit = self.config.max_concurrency
        if limit is not None and self._active >= limit:
            await self._send_error(send, concurrency_exceeded(self._active + 1, limit))
            return
        self._active += 1
        try:
            try:
                data = decode_body(body, self.config)
                directives, marker = collect_directives(
                    _raw_last_user_text(data), headers.get("x-simulator")
                )
                fault = self._forced_fault(directives, marker, key)
                if fault is not None:
                    if directives.fault_after:  # an upstream slow to refuse
                        await asyncio.sleep(directives.fault_after)
                    raise fault
                directives = self._forced_finish(directives, marker, key)
                request = parse_chat_request(data, self.config, beta=beta)
                if directives.tool is not None and directives.tool not in {
                    t.name for t in request.tools
                }:
                    raise bad_request(f"simulator: tool={directives.tool} is not among the tools")
            except ApiError as error:
                await self._send_error(send, error)
                return
            watch = ClientWatch(receive)
            self._watches.add(watch)
            try:
                await self._complete(send, watch, key, request, directives)
            finally:
                self._watches.discard(watch)
                watch.close()
        finally:
            self._active -= 1

    def _pace(self, directives: Directives) -> Pace:
        config = self.config

        def pick(override: float | None, default: float) -> float:
            return default if override is None else override

        return Pace(
            queue_s=pick(directives.queue, config.queue_delay_s),
            first_token_latency_s=pick(
                directives.first_token_latency, config.first_token_latency_s
            ),
            tokens_per_s=pick(directives.tokens_per_s, config.tokens_per_s),
        )

    async def _complete(
        self,
        send: Send,
        watch: ClientWatch,
        key: str,
        request: ChatRequest,
        directives: Directives,
    ) -> None:
        rng = conversation_rng(self.config.seed, request)
        reply = generate_reply(request, directives, rng)
        owner = f"{key}\0{request.user_id or ''}"
        boundaries = self._cache.boundaries(owner, request, request.message_tokens)
        cache_hit = self._cache.hit_and_store(boundaries)
        calls = "".join(c.name + c.arguments for c in reply.tool_calls)
        self._cache.store_output(boundaries[-1][0], reply.content_text, calls)

        usage = build_usage(request.prompt_tokens, cache_hit, reply, request.thinking)
        envelope = Envelope(
            id=self._new_uuid(),
            created=int(time.time()),
            model=request.model,
            system_fingerprint=self.system_fingerprint,
        )
        pace = self._pace(directives)
        if request.stream:
            await self._stream(send, watch, request, reply, usage, envelope, pace, directives)
        else:
            await self._respond(send, watch, request, reply, usage, envelope, pace, directives)

    async def _queue(
        self, send: Send, watch: ClientWatch, seconds: float, keepalive: bytes
    ) -> bool:
        """Hold the request in the "queue", writing keep-alives; False if it must be dropped."""
        timeout = self.config.queue_timeout_s
        timed_out = timeout is not None and seconds >= timeout
        wait = min(seconds, timeout) if timeout is not None else seconds
        interval = self.config.keepalive_interval_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        next_keepalive = loop.time() + interval
        while watch.alive:
            now = loop.time()
            if now >= deadline:
                break
            await asyncio.sleep(min(deadline, next_keepalive) - now)
            if loop.time() >= next_keepalive and loop.time() < deadline and watch.alive:
                await send({"type": "http.response.body", "body": keepalive, "more_body": True})
                next_keepalive += interval
        return watch.alive and not timed_out

    async def _stall(self, send: Send, watch: ClientWatch, keepalive: bytes | None) -> None:
        """Keep the connection open and silent (or only keep-alives) until the client leaves."""
        if keepalive is None:
            await watch.wait_gone()
            return
        while watch.alive:
            try:
                await asyncio.wait_for(watch.wait_gone(), self.config.keepalive_interval_s)
            except TimeoutError:
                await send({"type": "http.response.body", "body": keepalive, "more_body": True})

    async def _end(self, send: Send, body: bytes = b"") -> None:
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _stream(
        self,
        send: Send,
        watch: ClientWatch,
        request: ChatRequest,
        reply: Reply,
        usage: Usage,
        envelope: Envelope,
        pace: Pace,
        directives: Directives,
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    *self._headers(b"text/event-stream; charset=utf-8"),
                    (b"connection", b"keep-alive"),
                ],
            }
        )
        if pace.queue_s > 0 and not await self._queue(send, watch, pace.queue_s, STREAM_KEEPALIVE):
            await self._end(send)
            return
        if pace.first_token_latency_s > 0:
            await asyncio.sleep(pace.first_token_latency_s)
        events = stream_events(
            envelope,
            request,
            reply,
            usage,
            chunk_tokens=self.config.chunk_tokens,
            usage_placement=directives.usage or self.config.usage_placement,
            logprob_rng=random.Random(envelope.id),
            logprobs_as=directives.logprobs,
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        tokens = 0
        rate = pace.tokens_per_s
        # `sent` counts the data events already written before this one.
        for sent, event in enumerate(events):
            if not watch.alive:
                return
            if directives.drop_after is not None and sent >= directives.drop_after:
                await self._end(send)
                return
            if directives.stall_after is not None and sent >= directives.stall_after:
                await self._stall(send, watch, STREAM_KEEPALIVE if directives.keepalive else None)
                await self._end(send)
                return
            if rate > 0 and event.tokens:
                tokens += event.tokens
                delay = started + tokens / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await send({"type": "http.response.body", "body": event.data, "more_body": True})
        if directives.drop_after is not None or directives.stall_after is not None:
            # The stream ran out before the fault point: still no [DONE], as promised.
            if directives.stall_after is not None:
                await self._stall(send, watch, STREAM_KEEPALIVE if directives.keepalive else None)
            await self._end(send)
            return
        await self._end(send, DONE)

    async def _respond(
        self,
        send: Send,
        watch: ClientWatch,
        request: ChatRequest,
        reply: Reply,
        usage: Usage,
        envelope: Envelope,
        pace: Pace,
        directives: Directives,
    ) -> None:
        body = completion_body(
            envelope,
            request,
            reply,
            None if directives.usage == "none" else usage,
            random.Random(envelope.id),
            directives.logprobs,
        )
        faulty = directives.drop_after is not None or directives.stall_after is not None
        if pace.queue_s <= 0 and not faulty:
            await self._wait_generation(reply.completion_tokens, pace)
            await self._send_json(send, 200, body)
            return
        # Once keep-alive newlines go out the status is fixed and the length unknown (§4.5).
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": self._headers(b"application/json"),
            }
        )
        if pace.queue_s > 0 and not await self._queue(send, watch, pace.queue_s, BODY_KEEPALIVE):
            await self._end(send)
            return
        if directives.stall_after is not None:
            await self._stall(send, watch, BODY_KEEPALIVE if directives.keepalive else None)
            await self._end(send)
            return
        await self._wait_generation(reply.completion_tokens, pace)
        if directives.drop_after is not None:
            await self._end(send, body[: len(body) // 2])
            return
        await self._end(send, body)

    async def _wait_generation(self, tokens: int, pace: Pace) -> None:
        delay = pace.first_token_latency_s + (
            tokens / pace.tokens_per_s if pace.tokens_per_s else 0
        )
        if delay > 0:
            await asyncio.sleep(delay)


def create_app(config: SimulatorConfig | None = None) -> SimulatorApp:
    """Build the ASGI app for `config` (defaults: current-2026, any sk- key, no delays)."""
    return SimulatorApp(config or SimulatorConfig())
