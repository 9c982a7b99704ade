"""A tiny raw HTTP/1.1 server for the upstream client's tests (no tests of its own).

Each accepted connection is answered by the next scripted handler (the last one repeats), so a
test can script "503, then a good stream". Handlers write raw bytes in arbitrary piece sizes,
chunked or close-delimited, and can watch for the client hanging up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conversations.upstream import UpstreamClient, UpstreamConfig, create_http_client

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "deepseek-captured"
API_KEY = "sk-test0123456789abcdef0123456789abcdef"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One accepted connection: the request it carried and ways to answer it."""

    def __init__(
        self,
        request: Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        rng: random.Random,
    ) -> None:
        self.request = request
        self.reader = reader
        self.writer = writer
        self.rng = rng
        self.chunked = False

    async def head(
        self,
        status: int = 200,
        headers: dict[str, str] | None = None,
        *,
        chunked: bool = True,
        content_type: str = "text/event-stream",
    ) -> None:
        self.chunked = chunked
        reason = {200: "OK", 400: "Bad Request", 429: "Too Many Requests"}.get(status, "Status")
        lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}"]
        lines.append("Transfer-Encoding: chunked" if chunked else "Connection: close")
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()

    async def write(self, data: bytes, *, pieces: tuple[int, int] | None = (1, 37)) -> None:
        """Write ``data`` in random pieces (each its own chunk when chunked), draining each."""
        position = 0
        while position < len(data):
            size = len(data) if pieces is None else self.rng.randint(*pieces)
            piece = data[position : position + size]
            position += size
            if self.chunked:
                piece = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
            self.writer.write(piece)
            await self.writer.drain()
            if self.rng.random() < 0.3:
                await asyncio.sleep(0)

    async def end(self) -> None:
        if self.chunked:
            self.writer.write(b"0\r\n\r\n")
            await self.writer.drain()
        self.writer.close()

    async def reply(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        """A complete response with Content-Length."""
        lines = [
            f"HTTP/1.1 {status} Status",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
        ]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self.writer.drain()

    async def wait_for_hangup(self, timeout: float = 5.0) -> bool:
        """True once the client closes its side of the connection."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    data = await self.reader.read(1024)
                    if not data:
                        return True
        except (TimeoutError, ConnectionError):
            return False


Handler = Callable[[Connection], Awaitable[None]]


@dataclass
class RawServer:
    """Serves scripted handlers on 127.0.0.1; ``requests`` records what the client sent."""

    handlers: Sequence[Handler]
    seed: int = 0
    requests: list[Request] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    hangups: list[bool] = field(default_factory=list)
    base_url: str = ""
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for connection in self.connections:
            connection.writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Request(method, path, headers, body)
            self.requests.append(request)
            index = min(len(self.connections), len(self.handlers) - 1)
            connection = Connection(request, reader, writer, random.Random(self.seed + index))
            self.connections.append(connection)
            await self.handlers[index](connection)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()


def sse(*payloads: Any, done: bool = True) -> bytes:
    """Wire bytes of a DeepSeek stream: one ``data:`` event per payload, then ``[DONE]``."""
    out = []
    for payload in payloads:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        out.append(f"data: {text}\n\n")
    if done:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def chunk(
    content: str | None = None,
    *,
    reasoning: str | None = None,
    role: bool = False,
    finish: str | None = None,
    usage: dict[str, Any] | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A chat.completion.chunk like DeepSeek's."""
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta["reasoning_content"] = reasoning
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    return {
        "id": "5c2e0000-0000-4000-8000-000000000001",
        "object": "chat.completion.chunk",
        "created": 1795651300,
        "model": "deepseek-flash",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": usage,
    }


USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 3,
    "total_tokens": 15,
    "prompt_tokens_details": {"cached_tokens": 0},
    "prompt_cache_hit_tokens": 0,
    "prompt_cache_miss_tokens": 12,
}


def hello_stream(text: str = "Hello there") -> bytes:
    """A short, complete non-thinking stream answering ``text`` word by word."""
    words = text.split(" ")
    pieces = [words[0]] + [" " + word for word in words[1:]]
    return sse(
        chunk("", role=True),
        *[chunk(piece) for piece in pieces],
        chunk("", finish="stop", usage=USAGE),
    )


def answer_stream(data: bytes, **head: Any) -> Handler:
    """A handler that sends ``data`` as a 200 SSE body in random pieces."""

    async def handler(connection: Connection) -> None:
        await connection.head(**head)
        await connection.write(data)
        await connection.end()

    return handler


def answer_status(status: int, body: bytes, headers: dict[str, str] | None = None) -> Handler:
    async def handler(connection: Connection) -> None:
        await connection.reply(status, body, headers)

    return handler


def error_body(message: str, kind: str = "invalid_request_error") -> bytes:
    return json.dumps(
        {
            "error": {
                "message": message,
                "type": kind,
                "param": None,
                "code": "invalid_request_error",
            }
        }
    ).encode()


def make_config(base_url: str, **overrides: Any) -> UpstreamConfig:
    """A config with fast backoff so that retry tests take milliseconds."""
    values: dict[str, Any] = {
        "base_url": base_url,
        "api_key": API_KEY,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
    }
    values.update(overrides)
    return UpstreamConfig(**values)


@contextlib.asynccontextmanager
async def upstream_client(base_url: str, **overrides: Any) -> AsyncIterator[UpstreamClient]:
    """An UpstreamClient with its own httpx client, closed afterwards."""
    config = make_config(base_url, **overrides)
    http = create_http_client(max_connections=config.max_connections)
    try:
        yield UpstreamClient(config, http=http)
    finally:
        await http.aclose()


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [event async for event in stream]


@contextlib.asynccontextmanager
async def serving(
    handlers: Sequence[Handler], *, seed: int = 0, path: str = "", **overrides: Any
) -> AsyncIterator[tuple[RawServer, UpstreamClient]]:
    """A RawServer and a client pointed at it (``path`` is appended to its base URL)."""
    server = RawServer(handlers, seed=seed)
    async with server, upstream_client(server.base_url + path, **overrides) as client:
        yield server, client
