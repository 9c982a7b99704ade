"""CPU per chunk and added latency of the upstream client vs a bare asyncio SSE reader.

Both readers run in this process, one after the other, against the same simulator process
(30 tokens/s, one token per chunk), with 1, 100 and 300 concurrent streams.

* CPU per chunk = this process's CPU time (``time.process_time``) during the run / chunks.
  The simulator runs in its own process, so its CPU is not counted.
* Added latency: the simulator paces chunks every 1/30 s, so the gap between two chunks as
  the reader sees them is that interval plus whatever the reading side adds (event-loop
  backlog, parsing). The table gives p50 and p99 of those gaps; p99 - 33.3 ms is the lag a
  reader adds at its worst percentile. Both readers see the same simulator, so the ratio is fair.

Run: ``.venv/bin/python bench/upstream_client.py [--seconds 8] [--streams 1,100,300]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conversations.upstream import (
    ContentDelta,
    ModelTarget,
    UpstreamClient,
    UpstreamConfig,
    create_http_client,
)
from simulator.testing import start_simulator_process

TOKENS_PER_S = 30
LONG_ANSWER = " ".join(f"word{i}" for i in range(3000))
MESSAGES = [{"role": "user", "content": f"[[sim: say={LONG_ANSWER}]] Talk for a while."}]
TARGET = ModelTarget("deepseek-flash", thinking=False, reasoning_passback="send")


@dataclass
class Run:
    chunks: int = 0
    gaps: list[float] = field(default_factory=list)
    cpu: float = 0.0


async def raw_stream(host: str, port: int, stop_at: float, run: Run) -> None:
    """The floor: hand-written HTTP/1.1, readline, json.loads per data line."""
    body = json.dumps(
        {
            "model": "deepseek-flash",
            "thinking": {"type": "disabled"},
            "messages": MESSAGES,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": 8000,
        }
    ).encode()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        b"POST /chat/completions HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer sk-bench\r\n"
        b"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
        b"Accept-Encoding: identity\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
        % (host.encode(), len(body), body)
    )
    await writer.drain()
    last = None
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            # Chunked framing lines (sizes, blank) are skipped; only data lines count.
            if line.startswith(b"data: "):
                payload = line[6:].strip()
                if payload == b"[DONE]":
                    break
                chunk = json.loads(payload)
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    now = time.perf_counter()
                    if last is not None:
                        run.gaps.append(now - last)
                    last = now
                    run.chunks += 1
                    if now >= stop_at:
                        break
    finally:
        writer.close()


async def client_stream(client: UpstreamClient, stop_at: float, run: Run) -> None:
    last = None
    stream = client.stream_chat(TARGET, MESSAGES, {"max_tokens": 8000})
    async with contextlib.aclosing(stream) as events:
        async for event in events:
            if type(event) is ContentDelta:
                now = time.perf_counter()
                if last is not None:
                    run.gaps.append(now - last)
                last = now
                run.chunks += 1
                if now >= stop_at:
                    break


async def measure(kind: str, base_url: str, streams: int, seconds: float) -> Run:
    run = Run()
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    http = create_http_client(max_connections=1000)
    client = UpstreamClient(UpstreamConfig(base_url=base_url, api_key="sk-bench"), http=http)
    # Warm-up (connection setup, imports) is excluded from the measurement.
    stop_at = time.perf_counter() + seconds + 1.0
    if kind == "raw":
        tasks = [raw_stream(host, port, stop_at, run) for _ in range(streams)]
    else:
        tasks = [client_stream(client, stop_at, run) for _ in range(streams)]
    gathered = asyncio.gather(*tasks)
    await asyncio.sleep(1.0)
    run.chunks, run.gaps = 0, []
    cpu_start = time.process_time()
    await gathered
    run.cpu = time.process_time() - cpu_start
    await http.aclose()
    return run


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--streams", default="1,100,300")
    options = parser.parse_args()
    process, base_url = start_simulator_process(tokens_per_s=TOKENS_PER_S, chunk_tokens=1)
    try:
        rows = []
        for streams in [int(s) for s in options.streams.split(",")]:
            raw = asyncio.run(measure("raw", base_url, streams, options.seconds))
            ours = asyncio.run(measure("client", base_url, streams, options.seconds))
            rows.append((streams, raw, ours))
    finally:
        process.terminate()
        process.wait()
    nominal = 1000 / TOKENS_PER_S
    print(f"30 tokens/s, 1 token per chunk (nominal gap {nominal:.1f} ms); {options.seconds}s each")
    header = (
        "streams | reader | chunks | CPU µs/chunk | gap p50 ms | gap p99 ms | "
        "p99 lag ms | CPU ratio | lag ratio"
    )
    print(header)
    print("-" * len(header))
    for streams, raw, ours in rows:
        raw_cpu = raw.cpu / max(raw.chunks, 1) * 1e6
        our_cpu = ours.cpu / max(ours.chunks, 1) * 1e6
        raw_lag = pct(raw.gaps, 0.99) * 1000 - nominal
        our_lag = pct(ours.gaps, 0.99) * 1000 - nominal
        for name, run, cpu, lag in (
            ("raw", raw, raw_cpu, raw_lag),
            ("client", ours, our_cpu, our_lag),
        ):
            ratio = f"{our_cpu / raw_cpu:.2f}x" if name == "client" else ""
            lag_ratio = f"{our_lag / raw_lag:.2f}x" if name == "client" and raw_lag > 0 else ""
            print(
                f"{streams:7d} | {name:6s} | {run.chunks:6d} | {cpu:12.1f} | "
                f"{statistics.median(run.gaps) * 1000 if run.gaps else float('nan'):10.1f} | "
                f"{pct(run.gaps, 0.99) * 1000:10.1f} | {lag:10.1f} | {ratio:9s} | {lag_ratio}"
            )


if __name__ == "__main__":
    main()
