"""N concurrent conversations over websockets vs the same streams read raw from the simulator.

For each N (default 50, 150, 300, 500) the bench starts a fresh daphne (the app as deployed:
``python -m daphne chatsite.asgi:application``, in-memory channel layer, one process) against a
simulator process paced at 30 tokens/s, and runs two phases with the same prompts and the same
start schedule (stream i of N starts i/N of an answer's length after the phase starts, then each
conversation sends its next message as soon as the previous reply completes, ``--rounds`` times,
so about N streams are in flight at any moment):

* raw: N clients in this process POST straight to the simulator and parse its SSE by hand;
* ws: N websocket clients, one per conversation, send ``message.send`` with the same
  ``[[sim: say=ANSWER]]`` prompt and read ``reply.*`` frames.

Measured:

* TTFT: request sent → first content received (ws: the first ``reply.delta`` after
  ``message.send``; raw: the first content chunk after the POST). Added TTFT = ws pXX - raw pXX.
* Added delay per content position: the answer is known, so every upstream chunk boundary
  (character offset) can be timed on both sides. For each ws stream and each offset, the time at
  which the client held that many characters, minus the median time the raw clients held it.
  Two anchors: the stream's own first content ("added inter-chunk": what the server adds after
  the first token, coalescing included) and the stream's own request start (TTFT included).
  The raw clients' own spread around that median is printed as the noise floor.
* Drops/reorders: each ws reply must have continuous ``seq`` (started s, deltas s+1, s+2, …,
  completed with the last), and its deltas must rebuild exactly ANSWER (the raw text too).
* Server CPU per upstream chunk: daphne's CPU time (user+system, all threads, psutil) from the
  first ``message.send`` to the last ``reply.completed``, ÷ (ws streams x SSE data events per
  stream, counted by the raw clients on the identical answer).
* RSS per open socket: daphne RSS after N idle sockets are open minus before, ÷ N (after a
  warm-up socket and stream, so imports and first-use caches are not counted).
* Database writes: ``n_tup_ins + n_tup_upd + n_tup_del`` of the app tables in
  ``pg_stat_user_tables`` before daphne starts and after it stops (its backends exit, so their
  pending statistics are flushed), ÷ streams (the warm-up stream included). The message-row
  UPDATEs other than the final one, ÷ stream seconds, is the "writes per second while
  streaming" figure.
* Websocket bytes per answer: bytes received on the socket (frames with headers, compression as
  negotiated) from ``message.send`` to ``reply.completed``, and the ``reply.delta`` payloads
  alone, vs the answer's UTF-8 length.

Each conversation has its own user (a team, so no per-user limit is what gets measured) and a
title, so that no title call (an extra upstream request and ledger rows after the first reply)
mixes into the figures. "bad ws" counts every ws stream that failed for any reason (error frame,
timeout, sequence gap or text mismatch); the lines under the tables say which.

Run: ``.venv/bin/python bench/streams.py [--streams 50,150,300,500] [--seconds 3] [--rounds 3]``
(``DATABASE_URL`` if set, else an embedded PostgreSQL in ``.data/bench-pg``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import secrets
import signal
import statistics
import subprocess
import sys
import time
import uuid
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from bench.processes import close_django_connections, start_daphne  # noqa: E402
from chatsite.launcher import Child, Supervisor, free_port, start_embedded_postgres  # noqa: E402
from simulator.testing import start_simulator_process  # noqa: E402
from simulator.tokens import split_pieces  # noqa: E402

TOKENS_PER_S = 30
WARM_STREAMS = 16  # one stream each before a phase is measured (see ws_phase)
CHUNK_TOKENS = 2  # the simulator's default: 15 content chunks per second per stream
UPSTREAM_MODEL = "deepseek-v4-flash"  # what the seeded "deepseek-chat" row points at
MAX_TOKENS = 4096  # the seeded row's default_max_tokens, as the app sends it
APP_TABLES = "conversations\\_%"  # every table of the app (LIKE pattern)
TARGET_TTFT_MS = 1.0
TARGET_GAP_P99_MS = 25.0
TARGET_CPU_US = 100.0
TARGET_WRITES_PER_S = 1.0


# --- the answer ------------------------------------------------------------------------------


def make_answer(tokens: int) -> str:
    """Distinct words (a reorder shows), some non-ASCII (offsets are characters, not bytes)."""
    words: list[str] = []
    while len(split_pieces(" ".join(words))) < tokens:
        i = len(words)
        words.append("café" if i % 9 == 8 else f"w{i}")
    return " ".join(words)


def escape_say(text: str) -> str:
    return text.replace("\\", "\\\\").replace("]", "\\]").replace("[", "\\[").replace(";", "\\;")


# --- results ---------------------------------------------------------------------------------


@dataclass
class Stream:
    kind: str
    index: int
    round: int
    start: float = 0.0
    end: float = 0.0
    text: str = ""
    # (characters held, perf_counter) after each piece of content received
    arrivals: list[tuple[int, float]] = field(default_factory=list)
    events: int = 0  # raw: SSE data events (upstream chunks); ws: reply.delta frames
    seq_errors: int = 0
    error: str = ""
    wire_bytes: int = 0
    started_at: float = 0.0  # ws: when reply.started arrived (the turn is set up)
    delta_bytes: int = 0

    @property
    def ttft(self) -> float | None:
        return self.arrivals[0][1] - self.start if self.arrivals else None

    def held_at(self, chars: int) -> float | None:
        """When this stream first held at least ``chars`` characters of content."""
        position = bisect_left(self.arrivals, (chars, 0.0))
        if position >= len(self.arrivals):
            return None
        return self.arrivals[position][1]


@dataclass
class Phase:
    streams: list[Stream] = field(default_factory=list)
    cpu_self: float = 0.0
    wall: float = 0.0
    server_cpu: float = 0.0
    postgres_cpu: float = 0.0
    rss_before: int = 0
    rss_sockets: int = 0
    rss_peak: int = 0
    compression: str = ""
    idle_cores: float = 0.0  # daphne CPU with the sockets open and nothing streaming
    # (perf_counter, daphne CPU seconds) every 0.25 s during the phase.
    cpu_samples: list[tuple[float, float]] = field(default_factory=list)


# --- raw SSE client --------------------------------------------------------------------------


async def raw_stream(host: str, port: int, key: str, prompt: str, stream: Stream) -> None:
    body = json.dumps(
        {
            "model": UPSTREAM_MODEL,
            "thinking": {"type": "disabled"},
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": MAX_TOKENS,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ).encode()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        stream.start = time.perf_counter()
        writer.write(
            b"POST /chat/completions HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
            b"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
            % (host.encode(), port, key.encode(), len(body), body)
        )
        status = await reader.readline()
        if b" 200 " not in status:
            stream.error = status.decode(errors="replace").strip()
            return
        chunked = False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        buffer = b""
        done = False
        while not done:
            if chunked:
                size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    break
                data = (await reader.readexactly(size + 2))[:-2]
            else:
                data = await reader.read(65536)
                if not data:
                    break
            now = time.perf_counter()
            buffer += data
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                for line in event.split(b"\n"):
                    if not line.startswith(b"data: "):
                        continue
                    payload = line[6:]
                    if payload == b"[DONE]":
                        done = True
                        break
                    stream.events += 1
                    chunk = json.loads(payload)
                    choices = chunk.get("choices") or []
                    content = choices[0]["delta"].get("content") if choices else None
                    if content:
                        stream.text += content
                        stream.arrivals.append((len(stream.text), now))
        stream.end = time.perf_counter()
        if not done:
            stream.error = "no [DONE]"
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def raw_phase(
    base_url: str, key: str, prompt: str, n: int, rounds: int, spread: float, timeout: float
) -> Phase:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    phase = Phase()
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.2

    async def conversation(i: int) -> None:
        await asyncio.sleep(max(0.0, t0 + spread * i / n - loop.time()))
        for r in range(rounds):
            stream = Stream("raw", i, r)
            phase.streams.append(stream)
            try:
                await asyncio.wait_for(raw_stream(host, port, key, prompt, stream), timeout)
            except Exception as error:  # recorded, counted as a failed stream
                stream.error = stream.error or f"{type(error).__name__}: {error}"

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(conversation(i) for i in range(n)))
    phase.cpu_self, phase.wall = time.process_time() - cpu, time.perf_counter() - wall
    return phase


# --- websocket client ------------------------------------------------------------------------


class CountingConnection(ClientConnection):
    """Counts the bytes the socket receives (frames with their headers)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received_bytes = 0

    def data_received(self, data: bytes) -> None:
        self.received_bytes += len(data)
        super().data_received(data)


async def open_socket(
    port: int, session: str, conversation_id: str, gate: asyncio.Semaphore
) -> CountingConnection:
    async with gate:
        socket = await connect(
            f"ws://127.0.0.1:{port}/ws/conversations/{conversation_id}/",
            additional_headers={
                "Origin": f"http://127.0.0.1:{port}",
                "Cookie": f"sessionid={session}",
            },
            create_connection=CountingConnection,
            proxy=None,
            open_timeout=120,
            ping_interval=None,
            max_size=None,
            max_queue=None,
        )
        ready = json.loads(await socket.recv())
        if ready.get("type") != "ready":
            raise RuntimeError(f"expected ready, got {ready}")
        assert isinstance(socket, CountingConnection)
        return socket


async def ws_turn(socket: CountingConnection, prompt: str, stream: Stream) -> None:
    bytes_before = socket.received_bytes
    stream.start = time.perf_counter()
    await socket.send(
        json.dumps(
            {"type": "message.send", "client_id": uuid.uuid4().hex, "content": prompt},
            ensure_ascii=False,
        )
    )
    seq: int | None = None
    while True:
        raw = await socket.recv()
        now = time.perf_counter()
        assert isinstance(raw, str)
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "reply.started":
            seq = frame["seq"]
            stream.started_at = now
        elif kind == "reply.delta":
            stream.events += 1
            stream.delta_bytes += len(raw.encode())
            if seq is None or frame["seq"] != seq + 1:
                stream.seq_errors += 1
            seq = frame["seq"]
            content = frame.get("content") or ""
            if content:
                stream.text += content
                stream.arrivals.append((len(stream.text), now))
        elif kind == "reply.completed":
            if frame["seq"] != seq:
                stream.seq_errors += 1
            stream.end = now
            break
        elif kind in ("reply.failed", "error", "reply.snapshot"):
            stream.error = f"{kind}: {raw[:200]}"
            break
    stream.wire_bytes = socket.received_bytes - bytes_before


async def ws_phase(
    port: int,
    conversations: list[tuple[str, str]],
    warm_conversations: list[tuple[str, str]],
    prompt: str,
    rounds: int,
    spread: float,
    timeout: float,
    server: psutil.Process,
    postgres: psutil.Process | None,
) -> Phase:
    phase = Phase()
    n = len(conversations)
    gate = asyncio.Semaphore(64)
    # Warm-up: one socket and one whole stream (imports, the upstream pool, first-use caches).
    # Several at once: each database connection the server's pool opens pays its first use of
    # the admission functions (PL/pgSQL compiled per connection, ~12 ms) here, not in the run —
    # a long-running server's connections are warm.
    warm = await asyncio.gather(*(open_socket(port, *c, gate) for c in warm_conversations))
    await asyncio.gather(
        *(
            asyncio.wait_for(ws_turn(w, prompt, Stream("warm", -1 - i, 0)), timeout)
            for i, w in enumerate(warm)
        )
    )
    await asyncio.gather(*(w.close() for w in warm))
    await asyncio.sleep(0.5)
    phase.rss_before = server.memory_info().rss
    sockets = await asyncio.gather(
        *(open_socket(port, session, c, gate) for session, c in conversations)
    )
    response = sockets[0].response
    extensions = response.headers.get("Sec-WebSocket-Extensions", "") if response else ""
    phase.compression = extensions or "none"
    idle_from = _cpu(server)
    await asyncio.sleep(2.0)
    phase.idle_cores = (_cpu(server) - idle_from) / 2.0
    phase.rss_sockets = server.memory_info().rss
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.2
    peak = phase.rss_sockets

    async def conversation(i: int) -> None:
        await asyncio.sleep(max(0.0, t0 + spread * i / n - loop.time()))
        for r in range(rounds):
            stream = Stream("ws", i, r)
            phase.streams.append(stream)
            try:
                await asyncio.wait_for(ws_turn(sockets[i], prompt, stream), timeout)
            except Exception as error:  # recorded, counted as a failed stream
                stream.error = stream.error or f"{type(error).__name__}: {error}"
                return  # the socket's state is unknown: this conversation stops

    async def sample_rss() -> None:
        nonlocal peak
        while True:
            await asyncio.sleep(0.25)
            peak = max(peak, server.memory_info().rss)
            phase.cpu_samples.append((time.perf_counter(), _cpu(server)))

    sampler = asyncio.ensure_future(sample_rss())
    server_cpu = _cpu(server)
    postgres_cpu = _tree_cpu(postgres)
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(conversation(i) for i in range(n)))
    phase.cpu_self, phase.wall = time.process_time() - cpu, time.perf_counter() - wall
    phase.server_cpu = _cpu(server) - server_cpu
    phase.postgres_cpu = _tree_cpu_delta(postgres, postgres_cpu)
    sampler.cancel()
    phase.rss_peak = peak
    await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
    return phase


def steady_cpu_per_chunk(phase: Phase) -> float:
    """Daphne CPU per upstream chunk while every stream runs and none starts or ends (the
    streaming path alone: upstream read, fan-out, websocket frames — no turn set-up, no
    finalization); NaN when the answers are too short for such a window (use --seconds ≥ 8)."""
    first_round = [s for s in phase.streams if s.round == 0 and s.end and not s.error]
    if not first_round or not phase.cpu_samples:
        return float("nan")
    start = max(s.start for s in first_round) + 0.5  # the last turn set up, its first chunks out
    end = min(s.end for s in first_round) - 0.2
    inside = [(t, cpu) for t, cpu in phase.cpu_samples if start <= t <= end]
    if len(inside) < 2:
        return float("nan")
    (t0, c0), (t1, c1) = inside[0], inside[-1]
    chunks = len(first_round) * (t1 - t0) * TOKENS_PER_S / CHUNK_TOKENS
    return (c1 - c0) / chunks * 1e6


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _tree_cpu(root: psutil.Process | None) -> dict[int, float]:
    if root is None:
        return {}
    result: dict[int, float] = {}
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            result[process.pid] = _cpu(process)
    return result


def _tree_cpu_delta(root: psutil.Process | None, before: dict[int, float]) -> float:
    after = _tree_cpu(root)
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


# --- database --------------------------------------------------------------------------------


def table_writes(database_url: str) -> dict[str, tuple[int, int, int]]:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables"
            " WHERE relname LIKE %s",
            [APP_TABLES],
        ).fetchall()
    return {name: (ins, upd, dele) for name, ins, upd, dele in rows}


def fresh_database(database_url: str) -> None:
    """Drop and recreate the bench's own database: migrations edited in place meanwhile (the
    tree moves under a bench) must not leave it with a stale schema."""
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DEBUG", "1")
    os.environ["DJANGO_SETTINGS_MODULE"] = "chatsite.settings"
    import django

    django.setup()


def create_conversations(count: int) -> list[tuple[str, str]]:
    """``count`` users (reused across N, one per conversation as in a team, so no per-user
    limit is what is measured) and a fresh titled conversation each: (sessionid, id) pairs."""
    from django.test import Client

    from conversations.models import Conversation, ModelConfig, User

    names = [f"bench-streams-{i}" for i in range(count)]
    existing = {u.username: u for u in User.objects.filter(username__in=names)}
    missing = [User(username=name) for name in names if name not in existing]
    for user in missing:
        user.set_unusable_password()
    User.objects.bulk_create(missing)
    users = {u.username: u for u in User.objects.filter(username__in=names)}
    model = ModelConfig.objects.get(name="deepseek-chat")
    rows = Conversation.objects.bulk_create(
        [Conversation(owner=users[name], model=model, title=name) for name in names]
    )
    pairs: list[tuple[str, str]] = []
    for name, row in zip(names, rows, strict=True):
        client = Client()
        client.force_login(users[name])
        pairs.append((client.cookies["sessionid"].value, str(row.pk)))
    # Close this process's pooled connections: their backends exit and flush their statistics,
    # so the before/after counters below only see the server's writes.
    close_django_connections()
    return pairs


# --- processes -------------------------------------------------------------------------------


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard or hard == resource.RLIM_INFINITY:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def postgres_process(url: str) -> psutil.Process | None:
    port = urlsplit(url).port
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if cmdline and cmdline[0].endswith("/postgres") and str(port) in cmdline:
            return process
    return None


# --- statistics ------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Row:
    n: int
    ws_streams: int
    raw_streams: int
    bad_ws: int
    bad_raw: int
    seq_errors: int
    text_mismatch: int
    errors: list[str]
    ttft_raw: tuple[float, float]
    ttft_ws: tuple[float, float]
    added_first: tuple[float, float]
    added_start: tuple[float, float]
    raw_floor: tuple[float, float]
    ws_gap: tuple[float, float]
    raw_gap: tuple[float, float]
    cpu_us: float
    steady_cpu_us: float
    turn_set_up: tuple[float, float]
    idle_cores: float
    postgres_us: float
    bench_cpu_ws: float
    rss_per_socket_kib: float
    rss_peak_mib: float
    writes_per_stream: float
    message_updates_per_stream: float
    streaming_writes_per_s: float
    breakdown: dict[str, tuple[float, float, float]]
    wire_per_answer: float
    delta_per_answer: float
    answer_bytes: int
    deltas_per_answer: float
    stream_seconds: float
    upstream_per_stream: float
    compression: str


def analyse(
    n: int,
    answer: str,
    raw: Phase,
    ws: Phase,
    writes: dict[str, tuple[int, int, int]],
) -> Row:
    raw_ok = [s for s in raw.streams if not s.error and s.text == answer]
    ws_done = [s for s in ws.streams if not s.error]
    ws_ok = [s for s in ws_done if s.text == answer and not s.seq_errors]
    errors = sorted({s.error[:160] for s in [*raw.streams, *ws.streams] if s.error})
    # Chunk boundaries of the answer as the upstream sends it (identical for every stream).
    boundaries = [chars for chars, _ in raw_ok[0].arrivals] if raw_ok else []
    ref_start: dict[int, float] = {}
    ref_first: dict[int, float] = {}
    floor: list[float] = []
    for chars in boundaries:
        from_start = [t - s.start for s in raw_ok if (t := s.held_at(chars)) is not None]
        from_first = [t - s.arrivals[0][1] for s in raw_ok if (t := s.held_at(chars)) is not None]
        ref_start[chars] = statistics.median(from_start)
        ref_first[chars] = statistics.median(from_first)
        floor.extend(v - ref_first[chars] for v in from_first)
    added_first: list[float] = []
    added_start: list[float] = []
    for s in ws_ok:
        for chars in boundaries:
            t = s.held_at(chars)
            if t is None:
                continue
            added_start.append(t - s.start - ref_start[chars])
            added_first.append(t - s.arrivals[0][1] - ref_first[chars])

    def gaps(streams: list[Stream]) -> list[float]:
        return [
            b[1] - a[1] for s in streams for a, b in zip(s.arrivals, s.arrivals[1:], strict=False)
        ]

    def ms(values: list[float]) -> tuple[float, float]:
        return pct(values, 0.5) * 1000, pct(values, 0.99) * 1000

    upstream_per_stream = statistics.mean(s.events for s in raw_ok) if raw_ok else float("nan")
    all_streams = len(ws_done) + WARM_STREAMS  # the warm-up streams wrote rows too
    message = writes.get("conversations_message", (0, 0, 0))
    total = sum(sum(v) for v in writes.values())
    stream_seconds = statistics.mean(s.end - s.start for s in ws_ok) if ws_ok else float("nan")
    message_updates = message[1] / all_streams
    answer_bytes = len(answer.encode())
    return Row(
        n=n,
        ws_streams=len(ws.streams),
        raw_streams=len(raw.streams),
        bad_ws=len(ws.streams) - len(ws_ok),
        bad_raw=len(raw.streams) - len(raw_ok),
        seq_errors=sum(s.seq_errors for s in ws.streams),
        text_mismatch=sum(1 for s in ws_done if s.text != answer),
        errors=errors,
        ttft_raw=ms([t for s in raw_ok if (t := s.ttft) is not None]),
        ttft_ws=ms([t for s in ws_ok if (t := s.ttft) is not None]),
        turn_set_up=ms([s.started_at - s.start for s in ws_ok if s.started_at]),
        added_first=ms(added_first),
        added_start=ms(added_start),
        raw_floor=ms(floor),
        ws_gap=ms(gaps(ws_ok)),
        raw_gap=ms(gaps(raw_ok)),
        cpu_us=ws.server_cpu / max(1.0, len(ws_done) * upstream_per_stream) * 1e6,
        steady_cpu_us=steady_cpu_per_chunk(ws),
        idle_cores=ws.idle_cores,
        postgres_us=ws.postgres_cpu / max(1.0, len(ws_done) * upstream_per_stream) * 1e6,
        bench_cpu_ws=ws.cpu_self / ws.wall if ws.wall else float("nan"),
        rss_per_socket_kib=(ws.rss_sockets - ws.rss_before) / n / 1024,
        rss_peak_mib=ws.rss_peak / 2**20,
        writes_per_stream=total / all_streams,
        message_updates_per_stream=message_updates,
        streaming_writes_per_s=(message_updates - 1) / stream_seconds,
        breakdown={k: tuple(x / all_streams for x in v) for k, v in writes.items()},  # type: ignore[misc]
        wire_per_answer=statistics.mean(s.wire_bytes for s in ws_ok) if ws_ok else float("nan"),
        delta_per_answer=statistics.mean(s.delta_bytes for s in ws_ok) if ws_ok else float("nan"),
        answer_bytes=answer_bytes,
        deltas_per_answer=statistics.mean(s.events for s in ws_ok) if ws_ok else float("nan"),
        stream_seconds=stream_seconds,
        upstream_per_stream=upstream_per_stream,
        compression=ws.compression,
    )


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(rows: list[Row], options: argparse.Namespace, answer: str) -> None:
    print()
    print(
        f"answer: {len(split_pieces(answer))} tokens, {len(answer)} chars, "
        f"{len(answer.encode())} bytes; {TOKENS_PER_S} tokens/s, {CHUNK_TOKENS} tokens/chunk; "
        f"{options.rounds} rounds per conversation, starts spread over {options.seconds:g} s"
    )
    print()
    print(
        "| N | streams ws/raw | bad ws/raw | TTFT raw p50/p99 ms | TTFT ws p50/p99 ms "
        "| added TTFT p50/p99 ms | added inter-chunk p50/p99 ms | raw floor p50/p99 ms "
        "| added from start p50/p99 ms | gap ws p50/p99 ms | gap raw p50/p99 ms |"
    )
    print("| --- " * 11 + "|")
    for r in rows:
        print(
            f"| {r.n} | {r.ws_streams}/{r.raw_streams} | {r.bad_ws}/{r.bad_raw} "
            f"| {r.ttft_raw[0]:.1f} / {r.ttft_raw[1]:.1f} | {r.ttft_ws[0]:.1f} / {r.ttft_ws[1]:.1f} "
            f"| {r.ttft_ws[0] - r.ttft_raw[0]:.1f} / {r.ttft_ws[1] - r.ttft_raw[1]:.1f} "
            f"| {r.added_first[0]:.1f} / {r.added_first[1]:.1f} "
            f"| {r.raw_floor[0]:.1f} / {r.raw_floor[1]:.1f} "
            f"| {r.added_start[0]:.1f} / {r.added_start[1]:.1f} "
            f"| {r.ws_gap[0]:.1f} / {r.ws_gap[1]:.1f} | {r.raw_gap[0]:.1f} / {r.raw_gap[1]:.1f} |"
        )
    print()
    print(
        "| N | daphne CPU µs/upstream chunk | of which streaming only µs/chunk "
        "| postgres CPU µs/chunk | bench CPU (cores) ws "
        "| RSS KiB/socket | RSS peak MiB | DB rows written/stream | message UPDATEs/stream "
        "| streaming writes/s/stream | ws bytes/answer (wire) | delta payload bytes/answer "
        "| answer bytes | deltas/answer | upstream chunks/stream | stream s |"
    )
    print("| --- " * 16 + "|")
    for r in rows:
        print(
            f"| {r.n} | {r.cpu_us:.0f} | {r.steady_cpu_us:.0f} | {r.postgres_us:.0f} "
            f"| {r.bench_cpu_ws:.2f} "
            f"| {r.rss_per_socket_kib:.1f} | {r.rss_peak_mib:.0f} | {r.writes_per_stream:.2f} "
            f"| {r.message_updates_per_stream:.2f} | {r.streaming_writes_per_s:.2f} "
            f"| {r.wire_per_answer:.0f} ({r.wire_per_answer / r.answer_bytes:.2f}x) "
            f"| {r.delta_per_answer:.0f} ({r.delta_per_answer / r.answer_bytes:.2f}x) "
            f"| {r.answer_bytes} | {r.deltas_per_answer:.1f} | {r.upstream_per_stream:.0f} "
            f"| {r.stream_seconds:.2f} |"
        )
    print()
    for r in rows:
        breakdown = ", ".join(
            f"{name.removeprefix('conversations_')} ins/upd/del {v[0]:.2f}/{v[1]:.2f}/{v[2]:.2f}"
            for name, v in sorted(r.breakdown.items())
            if any(v)
        )
        print(
            f"N={r.n} rows per stream: {breakdown}; ws compression: {r.compression}; "
            f"daphne idle with the sockets open: {r.idle_cores:.3f} cores"
        )
        if r.errors or r.seq_errors or r.text_mismatch:
            print(
                f"N={r.n} seq errors {r.seq_errors}, text mismatches {r.text_mismatch}, "
                f"errors: {r.errors[:5]}"
            )
    print()
    for r in rows:
        print(
            f"N={r.n} turn set-up (message.send → reply.started) p50/p99: "
            f"{r.turn_set_up[0]:.1f} / {r.turn_set_up[1]:.1f} ms"
        )
    print()
    print("Targets:")
    for r in rows:
        added_ttft = r.ttft_ws[0] - r.ttft_raw[0]
        checks = [
            f"added TTFT p50 {added_ttft:.1f} ms ≤ {TARGET_TTFT_MS:g}: "
            + verdict(added_ttft <= TARGET_TTFT_MS),
            f"CPU {r.cpu_us:.0f} µs/chunk (streaming only {r.steady_cpu_us:.0f}) "
            f"≤ {TARGET_CPU_US:g}: " + verdict(r.cpu_us <= TARGET_CPU_US),
            f"streaming writes {r.streaming_writes_per_s:.2f}/s ≤ {TARGET_WRITES_PER_S:g}/s + final: "
            + verdict(r.streaming_writes_per_s <= TARGET_WRITES_PER_S),
            f"drops {r.bad_ws}: " + verdict(r.bad_ws == 0),
        ]
        if r.n >= 500:
            checks.append(
                f"p99 added inter-chunk {r.added_first[1]:.1f} ms ≤ {TARGET_GAP_P99_MS:g}: "
                + verdict(r.added_first[1] <= TARGET_GAP_P99_MS)
            )
        print(f"  N={r.n}: " + "; ".join(checks))


# --- main ------------------------------------------------------------------------------------


def run(options: argparse.Namespace) -> list[Row]:
    answer = make_answer(options.answer_tokens or round(options.seconds * TOKENS_PER_S))
    prompt = f"[[sim: say={escape_say(answer)}]]"
    counts = [int(x) for x in options.streams.split(",") if x.strip()]
    timeout = options.seconds * 10 + 60
    supervisor = Supervisor()
    simulator: subprocess.Popen[str] | None = None
    daphne: Child | None = None
    rows: list[Row] = []
    # One key for the sessions this process signs and the daphne that reads them.
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    try:
        database_url = os.environ.get("DATABASE_URL") or ""
        if not database_url:
            database_url = start_embedded_postgres(
                supervisor, (ROOT / ".data" / "bench-pg").resolve(), "chat_bench"
            )
            fresh_database(database_url)
        env = dict(os.environ, DATABASE_URL=database_url, DEBUG="1", PYTHONUNBUFFERED="1")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            env=env,
            cwd=ROOT,
            check=True,
        )
        setup_django(database_url)
        key = "sk-bench" + secrets.token_hex(8)
        simulator, base_url = start_simulator_process(
            tokens_per_s=TOKENS_PER_S, chunk_tokens=CHUNK_TOKENS, api_key=key
        )
        postgres = postgres_process(database_url)
        for n in counts:
            print(f"N={n}: preparing", flush=True)
            pairs = create_conversations(n + WARM_STREAMS)
            time.sleep(0.5)
            raw = asyncio.run(
                raw_phase(base_url, key, prompt, n, options.rounds, options.seconds, timeout)
            )
            print(f"N={n}: raw phase {raw.wall:.1f} s", flush=True)
            port = free_port()
            daphne_env = dict(
                env,
                DEEPSEEK_BASE_URL=base_url,
                DEEPSEEK_API_KEY=key,
                CSRF_TRUSTED_ORIGINS=f"http://127.0.0.1:{port}",
                LOG_LEVEL="WARNING",
                # As deployed: DEBUG off (Django then keeps no query log).
                DEBUG="0",
                ALLOWED_HOSTS="127.0.0.1,localhost",
            )
            before = table_writes(database_url)
            log = ROOT / ".data" / f"bench-streams-daphne-{n}.log"
            log.unlink(missing_ok=True)
            daphne = start_daphne(port, daphne_env, log)
            profiler = (
                subprocess.Popen(
                    [
                        options.py_spy,
                        "record",
                        "-p",
                        str(daphne.process.pid),
                        "--gil",
                        "--nonblocking",
                        "-f",
                        "raw",
                        "-r",
                        "100",
                        "-o",
                        str(ROOT / ".data" / f"bench-streams-{n}.pyspy.txt"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                if options.py_spy
                else None
            )
            ws = asyncio.run(
                ws_phase(
                    port,
                    pairs[WARM_STREAMS:],
                    pairs[:WARM_STREAMS],
                    prompt,
                    options.rounds,
                    options.seconds,
                    timeout,
                    psutil.Process(daphne.process.pid),
                    postgres,
                )
            )
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(30)
            daphne.stop()
            daphne = None
            time.sleep(1.0)  # exited backends flush their statistics
            after = table_writes(database_url)
            writes = {
                name: tuple(
                    a - b for a, b in zip(after[name], before.get(name, (0, 0, 0)), strict=True)
                )
                for name in after
            }
            print(f"N={n}: ws phase {ws.wall:.1f} s", flush=True)
            rows.append(analyse(n, answer, raw, ws, writes))  # type: ignore[arg-type]
    finally:
        if daphne is not None:
            daphne.stop()
        if simulator is not None:
            simulator.terminate()
            try:
                simulator.wait(10)
            except subprocess.TimeoutExpired:
                simulator.kill()
                simulator.wait()
        supervisor.stop_all()
    report(rows, options, answer)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--streams", default="50,150,300,500", help="comma-separated N values")
    parser.add_argument(
        "--seconds",
        type=float,
        default=3.0,
        help="answer length in seconds at 30 tokens/s (also the spread of the start times)",
    )
    parser.add_argument("--answer-tokens", type=int, default=0, help="override the answer length")
    parser.add_argument("--rounds", type=int, default=3, help="replies per conversation")
    parser.add_argument(
        "--py-spy",
        default="",
        help="path to a py-spy binary: profile daphne (GIL-holding samples) during each ws phase "
        "into .data/bench-streams-N.pyspy.txt (collapsed stacks)",
    )
    options = parser.parse_args()
    raise_fd_limit()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        run(options)
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
