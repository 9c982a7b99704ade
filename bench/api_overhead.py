"""What the DeepSeek-compatible API adds on top of the upstream: latency, CPU, throughput.

The same requests go to the simulator directly and through our API (one daphne worker, the app
as deployed) in the same run, non-streaming and streaming, at 1 and 50 concurrent clients:

* direct: the body our server itself sends upstream (``deepseek-v4-flash``, thinking disabled,
  ``stream_options.include_usage`` when streaming), straight to the simulator;
* api: the client's body (``deepseek-chat``) to ``/v1/chat/completions`` with a personal key,
  so each call is authenticated, validated, admitted and settled through ``quota`` (one ledger
  row each), relayed, and re-serialised in DeepSeek's shape.

Each phase runs closed-loop for ``--seconds`` after a warm-up: C clients each send their next
request as soon as the previous one completes. Per request: time to the first body byte and
to the end of the body. "Added" = api pXX - direct pXX at the same concurrency. Requests/s is
the API's completed requests per second with one worker at that concurrency; "CPU/request" is
daphne's user+system CPU time over the phase (psutil, all threads) ÷ requests. Every client has
its own user and key (a team, so that no per-user limit is what gets measured), with a policy
without limits.

The simulator answers at full speed (``tokens_per_s=0``) with a fixed 24-token reply in chunks
of 2 tokens (13 SSE events), so what is measured is our overhead, not token pacing.

With ``--reads``, also ``GET /models`` and ``GET /user/balance`` at C=1, the simulator's own
against ours (the key's user's models and allowance: one or two statements each).

With ``--pin``, daphne runs alone on the first CPU and everything else on the others, so that
"per worker" is what one worker does with a core of its own rather than with the share of the
machine the load generator, the simulator and PostgreSQL leave it.

Run: ``.venv/bin/python bench/api_overhead.py [--seconds 8] [--concurrency 1,50] [--reads] [--pin]``
(``DATABASE_URL`` if set, else an embedded PostgreSQL in ``.data/bench-api-pg``; everything it
starts is stopped on exit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import psutil  # noqa: E402

from bench.processes import close_django_connections, start_daphne  # noqa: E402
from chatsite.launcher import Child, Supervisor, free_port, start_embedded_postgres  # noqa: E402
from simulator.testing import start_simulator_process  # noqa: E402

ANSWER = " ".join(f"w{i}" for i in range(12))  # 24 tokens of the simulator's splitter
LITELLM_ADDED_MS = 10.0
LITELLM_RPS = 115.0


@dataclass
class Phase:
    mode: str  # "direct" | "api"
    stream: bool
    concurrency: int
    first_byte: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    errors: int = 0
    wall: float = 0.0
    cpu: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.total) / self.wall if self.wall else 0.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index] * 1000


# --- setup ---------------------------------------------------------------------------------


def fresh_database(database_url: str) -> None:
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def create_keys(database_url: str, count: int) -> list[str]:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DEBUG", "1")
    os.environ["DJANGO_SETTINGS_MODULE"] = "chatsite.settings"
    import django

    django.setup()

    from conversations import api_keys
    from conversations.models import Policy, User, UserLimits

    policy, _ = Policy.objects.get_or_create(name="bench: no limits")
    keys = []
    for i in range(count):
        user, _ = User.objects.get_or_create(username=f"bench-api-{i}")
        UserLimits.objects.update_or_create(user=user, defaults={"policy": policy})
        keys.append(api_keys.create_key(user, name="bench").secret)
    close_django_connections()
    return keys


# --- load ------------------------------------------------------------------------------------


def read_request_for(
    mode: str, path: str, sim_url: str, api_url: str, sim_key: str, key: str
) -> tuple[str, dict[str, str], bytes]:
    """A GET of ``path`` (``/models``, ``/user/balance``): the simulator's own, or ours."""
    url, secret = (sim_url + path, sim_key) if mode == "direct" else (api_url + path, key)
    return url, {"Authorization": f"Bearer {secret}", "Accept-Encoding": "identity"}, b""


def request_for(
    mode: str, stream: bool, sim_url: str, api_url: str, sim_key: str, key: str
) -> tuple[str, dict[str, str], bytes]:
    messages = [{"role": "user", "content": f"[[sim: say={ANSWER}]]"}]
    if mode == "direct":
        body: dict[str, Any] = {
            "model": "deepseek-v4-flash",
            "messages": messages,
            "thinking": {"type": "disabled"},
            "max_tokens": 64,
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        url, secret = sim_url + "/chat/completions", sim_key
    else:
        body = {"model": "deepseek-chat", "messages": messages, "max_tokens": 64, "stream": stream}
        url, secret = api_url + "/v1/chat/completions", key
    headers = {
        "Authorization": f"Bearer {secret}",
        "Content-Type": "application/json",
        "Accept-Encoding": "identity",
    }
    return url, headers, json.dumps(body).encode()


async def one(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: bytes, phase: Phase
) -> None:
    started = time.perf_counter()
    first = None
    received = bytearray()
    request = (
        session.post(url, headers=headers, data=body) if body else session.get(url, headers=headers)
    )
    async with request as response:
        async for chunk in response.content.iter_any():
            if first is None:
                first = time.perf_counter()
            received += chunk
        ok = response.status == 200 and (b"[DONE]" in received or received.endswith(b"}"))
    end = time.perf_counter()
    if not ok:
        phase.errors += 1
        return
    phase.first_byte.append((first or end) - started)
    phase.total.append(end - started)


async def run_phase(
    phase: Phase, seconds: float, warmup: float, make: Any, daphne: psutil.Process
) -> None:
    # A fresh connection per request: the simulator answers later requests on a reused
    # connection ~40 ms late (see RESULTS.md), which would swamp what is measured here.
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        stop_at = 0.0
        measuring = False

        async def client(i: int) -> None:
            url, headers, body = make(i)
            while time.perf_counter() < stop_at:
                if measuring:
                    await one(session, url, headers, body, phase)
                else:
                    scratch = Phase(phase.mode, phase.stream, phase.concurrency)
                    await one(session, url, headers, body, scratch)

        # Warm-up: connections open, caches and pools warm; not counted.
        stop_at = time.perf_counter() + warmup
        await asyncio.gather(*(client(i) for i in range(phase.concurrency)))
        measuring = True
        cpu_before = sum(daphne.cpu_times()[:2])
        started = time.perf_counter()
        stop_at = started + seconds
        await asyncio.gather(*(client(i) for i in range(phase.concurrency)))
        phase.wall = time.perf_counter() - started
        phase.cpu = sum(daphne.cpu_times()[:2]) - cpu_before


# --- report ----------------------------------------------------------------------------------


def report(phases: list[Phase], options: argparse.Namespace) -> str:
    lines = [
        "| stream | C | direct first byte p50/p99 ms | api first byte p50/p99 ms | added first byte "
        "p50/p99 ms | direct total p50/p99 ms | api total p50/p99 ms | added total p50/p99 ms | "
        "direct req/s | api req/s (1 worker) | daphne CPU ms/request | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    by_key = {(p.mode, p.stream, p.concurrency): p for p in phases}
    for stream in (False, True):
        for c in options.concurrency:
            d, a = by_key[("direct", stream, c)], by_key[("api", stream, c)]

            def pair(values: list[float]) -> str:
                return f"{pct(values, 50):.2f} / {pct(values, 99):.2f}"

            added_fb = f"{pct(a.first_byte, 50) - pct(d.first_byte, 50):.2f} / " + (
                f"{pct(a.first_byte, 99) - pct(d.first_byte, 99):.2f}"
            )
            added_total = f"{pct(a.total, 50) - pct(d.total, 50):.2f} / " + (
                f"{pct(a.total, 99) - pct(d.total, 99):.2f}"
            )
            cpu_ms = a.cpu / len(a.total) * 1000 if a.total else float("nan")
            lines.append(
                f"| {'yes' if stream else 'no'} | {c} | {pair(d.first_byte)} | {pair(a.first_byte)} "
                f"| {added_fb} | {pair(d.total)} | {pair(a.total)} | {added_total} | {d.rps:.0f} "
                f"| {a.rps:.0f} | {cpu_ms:.2f} | {d.errors + a.errors} |"
            )
    return "\n".join(lines)


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def run(options: argparse.Namespace) -> None:
    print(f"load average at start: {load_average()}", flush=True)
    worker_cpus, other_cpus = cpu_split(options.pin)
    if other_cpus:
        # Everything but the worker (this process, PostgreSQL, the simulator, and what they
        # start) runs on the other CPUs; children inherit it.
        os.sched_setaffinity(0, other_cpus)
    supervisor = Supervisor()
    simulator: subprocess.Popen[str] | None = None
    daphne: Child | None = None
    phases: list[Phase] = []
    reads: list[tuple[str, Phase]] = []
    try:
        database_url = os.environ.get("DATABASE_URL") or ""
        if not database_url:
            database_url = start_embedded_postgres(
                supervisor, (ROOT / ".data" / "bench-api-pg").resolve(), "chat_bench_api"
            )
            fresh_database(database_url)
        env = dict(os.environ, DATABASE_URL=database_url, PYTHONUNBUFFERED="1")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            env=dict(env, DEBUG="1"),
            cwd=ROOT,
            check=True,
        )
        keys = create_keys(database_url, max(options.concurrency))
        sim_key = "sk-bench" + secrets.token_hex(8)
        simulator, sim_url = start_simulator_process(
            tokens_per_s=0, chunk_tokens=2, api_key=sim_key, log_level="warning"
        )
        port = free_port()
        daphne_env = dict(
            env,
            DEBUG="0",
            SECRET_KEY=secrets.token_urlsafe(50),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            DEEPSEEK_BASE_URL=sim_url,
            DEEPSEEK_API_KEY=sim_key,
            CSRF_TRUSTED_ORIGINS=f"http://127.0.0.1:{port}",
            LOG_LEVEL="WARNING",
        )
        log = ROOT / ".data" / "bench-api-daphne.log"
        log.unlink(missing_ok=True)
        if worker_cpus:
            os.sched_setaffinity(0, worker_cpus)  # the worker is started on its own CPU
        try:
            daphne = start_daphne(port, daphne_env, log)
        finally:
            if other_cpus:
                os.sched_setaffinity(0, other_cpus)
        if worker_cpus:
            print(
                f"daphne pinned to CPU {sorted(worker_cpus)}, everything else to "
                f"{sorted(other_cpus)}",
                flush=True,
            )
        api_url = f"http://127.0.0.1:{port}"
        process = psutil.Process(daphne.process.pid)
        for stream in (False, True):
            for c in options.concurrency:
                for mode in ("direct", "api"):
                    phase = Phase(mode, stream, c)
                    profiler = None
                    if options.py_spy and mode == "api":
                        out = (
                            ROOT
                            / ".data"
                            / f"bench-api-{'stream' if stream else 'plain'}-{c}.pyspy.txt"
                        )
                        profiler = subprocess.Popen(
                            [
                                options.py_spy,
                                "record",
                                "-p",
                                str(process.pid),
                                "--nonblocking",
                                "-f",
                                "raw",
                                "-r",
                                "200",
                                "-o",
                                str(out),
                            ],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        )

                    def make(i: int, mode: str = mode, stream: bool = stream) -> Any:
                        return request_for(mode, stream, sim_url, api_url, sim_key, keys[i])

                    asyncio.run(run_phase(phase, options.seconds, options.warmup, make, process))
                    if profiler is not None:
                        profiler.send_signal(signal.SIGINT)
                        profiler.wait(30)
                    print(
                        f"{mode:6} stream={stream!s:5} C={c:3}: {len(phase.total)} requests, "
                        f"{phase.errors} errors, p50 {pct(phase.total, 50):.2f} ms",
                        flush=True,
                    )
                    phases.append(phase)
        for path in ("/models", "/user/balance") if options.reads else ():
            for mode in ("direct", "api"):
                phase = Phase(mode, False, 1)

                def make_read(i: int, mode: str = mode, path: str = path) -> Any:
                    return read_request_for(mode, path, sim_url, api_url, sim_key, keys[i])

                asyncio.run(run_phase(phase, options.seconds, options.warmup, make_read, process))
                reads.append((path, phase))
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
    table = report(phases, options)
    print()
    print(table)
    if reads:
        print()
        print("| GET, C=1 | direct p50/p99 ms | api p50/p99 ms | added p50/p99 ms | errors |")
        print("| --- | --- | --- | --- | --- |")
        by_path = {(path, phase.mode): phase for path, phase in reads}
        for path in dict.fromkeys(path for path, _ in reads):
            d, a = by_path[(path, "direct")], by_path[(path, "api")]
            print(
                f"| {path} | {pct(d.total, 50):.2f} / {pct(d.total, 99):.2f} "
                f"| {pct(a.total, 50):.2f} / {pct(a.total, 99):.2f} "
                f"| {pct(a.total, 50) - pct(d.total, 50):.2f} / "
                f"{pct(a.total, 99) - pct(d.total, 99):.2f} | {d.errors + a.errors} |"
            )
    print(f"load average at end: {load_average()}")
    for stream in (False, True):
        top = max(p.rps for p in phases if p.mode == "api" and p.stream == stream)
        print(
            f"stream={stream}: best API throughput {top:.0f} req/s per worker = "
            f"{top / LITELLM_RPS:.1f}x LiteLLM's ~{LITELLM_RPS:.0f} req/s"
        )


def cpu_split(pin: bool) -> tuple[set[int], set[int]]:
    """With ``pin``: (the worker's CPU, everyone else's), else two empty sets."""
    if not pin:
        return set(), set()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("--pin needs at least two CPUs")
    return {cpus[0]}, set(cpus[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured time per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured time per phase")
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in s.split(",") if x.strip()],
        default=[1, 50],
        help="comma-separated client counts",
    )
    parser.add_argument(
        "--reads",
        action="store_true",
        help="also GET /models and /user/balance, from the simulator and through our API, at C=1",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="run daphne alone on the first CPU and everything else (the load generator, the "
        "simulator, PostgreSQL) on the others: what one worker does with a core of its own",
    )
    parser.add_argument(
        "--py-spy",
        default="",
        help="path to a py-spy binary: profile daphne during each API phase into "
        ".data/bench-api-*.pyspy.txt (collapsed stacks)",
    )
    run(parser.parse_args())


if __name__ == "__main__":
    main()
