"""CPU per short streamed call: the upstream client against a bare asyncio reader.

An API call or a title is one short upstream stream, so what a call costs the client apart
from its chunks (a request, its response's set-up and end) matters as much as the chunks. Both
readers run in this process one after the other, each with ``--concurrency`` workers calling
one after another over kept-alive connections, against the same simulator process (no pacing:
``--tokens-per-s 0``), with a four-word answer.

* CPU per call = this process's CPU time (``time.process_time``) ÷ calls, after 200 warm-up
  calls per reader. The simulator's CPU is not counted.
* The ratio is the client's CPU per call over the bare reader's in the same run.

Run: ``.venv/bin/python bench/upstream_calls.py [--calls 3000] [--concurrency 1,50] [--rounds 3]``
(pin it with ``taskset -c 0`` to keep it off the simulator's CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conversations.upstream import (
    Completed,
    ModelTarget,
    UpstreamClient,
    UpstreamConfig,
    create_http_client,
)
from simulator.testing import start_simulator_process

TARGET = ModelTarget("deepseek-flash", thinking=False, reasoning_passback="send")
TEXT = "[[sim: say=Hello there, my friend]] Hi"
MESSAGES = [{"role": "user", "content": TEXT}]


class RawCaller:
    """The floor: hand-written HTTP/1.1 over one kept-alive connection, readline, json.loads
    per data line, the chunked body read to its last chunk."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        body = json.dumps(
            {
                "model": "deepseek-flash",
                "thinking": {"type": "disabled"},
                "messages": MESSAGES,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        ).encode()
        self.request = (
            b"POST /chat/completions HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer sk-bench\r\n"
            b"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
            b"Accept-Encoding: identity\r\nContent-Length: %d\r\n\r\n%s"
            % (host.encode(), len(body), body)
        )

    async def call(self) -> None:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        writer.write(self.request)
        done = False
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError("the simulator closed the connection")
            if line.startswith(b"data: "):
                payload = line[6:].strip()
                if payload == b"[DONE]":
                    done = True
                else:
                    json.loads(payload)
            elif done and line == b"0\r\n":
                await reader.readline()  # the blank line that ends the body
                return

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()


async def measure(
    make_call: Callable[[], Callable[[], Awaitable[None]]], calls: int, concurrency: int
) -> float:
    """CPU µs per call, ``concurrency`` workers each calling one after another."""
    workers = [make_call() for _ in range(concurrency)]

    async def work(call: Callable[[], Awaitable[None]], count: int) -> None:
        for _ in range(count):
            await call()

    await asyncio.gather(*(work(call, max(1, 200 // concurrency)) for call in workers))
    started = time.process_time()
    await asyncio.gather(*(work(call, calls // concurrency) for call in workers))
    return (time.process_time() - started) / (calls // concurrency * concurrency) * 1e6


async def run(options: argparse.Namespace) -> None:
    process, base_url = start_simulator_process(tokens_per_s=0)
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    http = create_http_client(max_connections=1000)
    client = UpstreamClient(UpstreamConfig(base_url=base_url, api_key="sk-bench"), http=http)
    raw_callers: list[RawCaller] = []

    def raw() -> Callable[[], Awaitable[None]]:
        caller = RawCaller(host, port)
        raw_callers.append(caller)
        return caller.call

    async def through_client() -> None:
        async with contextlib.aclosing(client.stream_chat(TARGET, MESSAGES)) as events:
            async for event in events:
                last = event
        assert isinstance(last, Completed)

    try:
        print("| C | round | raw CPU µs/call | client CPU µs/call | client / raw |")
        print("| --- | --- | --- | --- | --- |")
        for concurrency in options.concurrency:
            ratios = []
            for round_ in range(1, options.rounds + 1):
                raw_us = await measure(raw, options.calls, concurrency)
                client_us = await measure(lambda: through_client, options.calls, concurrency)
                ratios.append(client_us / raw_us)
                print(
                    f"| {concurrency} | {round_} | {raw_us:.0f} | {client_us:.0f} "
                    f"| {client_us / raw_us:.2f}x |"
                )
            print(f"C={concurrency}: median client / raw {statistics.median(ratios):.2f}x")
    finally:
        for caller in raw_callers:
            caller.close()
        await http.aclose()
        process.terminate()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="measured calls per reader")
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[1, 50],
        help="comma-separated worker counts",
    )
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
