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

With ``--litellm PATH`` (the ``litellm`` command of a LiteLLM installed in a venv of its own:
``python3 -m venv .data/litellm && .data/litellm/bin/pip install -r bench/litellm-requirements.txt``),
the same client requests also go through a LiteLLM proxy in front of the same simulator, in the
same run: one uvicorn worker started (and pinned) the way daphne is, with its access log off and
only a master key (no database: its lightest configuration, doing less per request than we do:
no per-user key lookup, no admission, no ledger row). The summary then gives our throughput as
a multiple of LiteLLM's measured here, beside the one against the ~115 requests/s quoted for it.

Each request opens a connection of its own (what curl does), unless ``--keep-alive``: then each
client keeps its connections open between requests, as the openai SDK and any client with a
connection pool do (to the simulator, to our API and to LiteLLM alike).

Run: ``.venv/bin/python bench/api_overhead.py [--seconds 8] [--concurrency 1,50] [--reads] [--pin]
[--keep-alive] [--litellm .data/litellm/bin/litellm]``
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
from urllib.request import urlopen

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
    mode: str  # "direct" | "api" | "litellm"
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


LITELLM_CONFIG = """\
model_list:
  - model_name: deepseek-chat
    litellm_params:
      model: openai/deepseek-v4-flash
      api_base: {sim_url}
      api_key: {sim_key}
      extra_body:
        thinking: {{type: disabled}}
general_settings:
  master_key: {master_key}
litellm_settings:
  telemetry: false
"""
#: uvicorn's loggers as daphne runs (``-v 0``): no line per request.
LITELLM_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"uvicorn.access": {"level": "WARNING"}, "uvicorn.error": {"level": "WARNING"}},
}


def start_litellm(
    command: str, sim_url: str, sim_key: str, master_key: str, port: int
) -> subprocess.Popen[bytes]:
    """LiteLLM's proxy, one uvicorn worker, in front of the simulator as ``deepseek-chat``."""
    data = ROOT / ".data"
    config = data / "bench-litellm.yaml"
    config.write_text(
        LITELLM_CONFIG.format(sim_url=sim_url, sim_key=sim_key, master_key=master_key)
    )
    logging_config = data / "bench-litellm-logging.json"
    logging_config.write_text(json.dumps(LITELLM_LOGGING))
    log_path = data / "bench-litellm.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *(command, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)),
                *("--num_workers", "1", "--log_config", str(logging_config)),
            ],
            # Not our environment: LiteLLM would take DATABASE_URL as its own.
            env={
                "PATH": os.environ.get("PATH", ""),
                "HOME": os.environ.get("HOME", "/tmp"),
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "LITELLM_LOG": "ERROR",
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"LiteLLM exited ({process.returncode}); see {log_path}")
        try:
            with urlopen(f"http://127.0.0.1:{port}/health/liveliness", timeout=2) as answer:
                if answer.status == 200:
                    return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"LiteLLM did not answer within 180 s; see {log_path}")


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
    """One request of ``mode``; ``api_url`` and ``key`` are LiteLLM's for ``litellm``, which
    gets the same body as our API."""
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
    phase: Phase,
    seconds: float,
    warmup: float,
    make: Any,
    daphne: psutil.Process,
    keep_alive: bool = False,
) -> None:
    # By default a fresh connection per request (what curl does; a connection's set-up is
    # measured too). With ``keep_alive`` each client reuses its connections, as the openai SDK
    # and other HTTP clients with a pool do.
    connector = aiohttp.TCPConnector(limit=0, force_close=not keep_alive)
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


def litellm_report(phases: list[Phase], options: argparse.Namespace) -> str:
    """LiteLLM's proxy beside our API, each against the simulator alone, same clients."""
    lines = [
        "| stream | C | api added first byte p50/p99 ms | litellm added first byte p50/p99 ms "
        "| api added total p50/p99 ms | litellm added total p50/p99 ms | api req/s | litellm "
        "req/s | api / litellm req/s | api CPU ms/request | litellm CPU ms/request | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    by_key = {(p.mode, p.stream, p.concurrency): p for p in phases}

    def added(server: list[float], direct: list[float]) -> str:
        return f"{pct(server, 50) - pct(direct, 50):.2f} / {pct(server, 99) - pct(direct, 99):.2f}"

    def cpu_ms(phase: Phase) -> float:
        return phase.cpu / len(phase.total) * 1000 if phase.total else float("nan")

    for stream in (False, True):
        for c in options.concurrency:
            d, a, t = (by_key[(mode, stream, c)] for mode in ("direct", "api", "litellm"))
            ratio = a.rps / t.rps if t.rps else float("nan")
            lines.append(
                f"| {'yes' if stream else 'no'} | {c} | {added(a.first_byte, d.first_byte)} "
                f"| {added(t.first_byte, d.first_byte)} | {added(a.total, d.total)} "
                f"| {added(t.total, d.total)} | {a.rps:.0f} | {t.rps:.0f} | {ratio:.1f}x "
                f"| {cpu_ms(a):.2f} | {cpu_ms(t):.2f} | {a.errors + t.errors} |"
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
    litellm: subprocess.Popen[bytes] | None = None
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
        servers = {"api": (process, api_url, keys)}
        modes = ["direct", "api"]
        if options.litellm:
            master_key = "sk-litellm-" + secrets.token_hex(8)
            litellm_port = free_port()
            if worker_cpus:
                os.sched_setaffinity(0, worker_cpus)  # the same CPU daphne has, alone
            try:
                litellm = start_litellm(options.litellm, sim_url, sim_key, master_key, litellm_port)
            finally:
                if other_cpus:
                    os.sched_setaffinity(0, other_cpus)
            servers["litellm"] = (
                psutil.Process(litellm.pid),
                f"http://127.0.0.1:{litellm_port}",
                [master_key] * max(options.concurrency),
            )
            modes.append("litellm")
            print(f"LiteLLM proxy on port {litellm_port}", flush=True)
        for stream in (False, True):
            for c in options.concurrency:
                for mode in modes:
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

                    server, url, secrets_ = servers.get(mode, servers["api"])

                    def make(
                        i: int,
                        mode: str = mode,
                        stream: bool = stream,
                        url: str = url,
                        secrets_: list[str] = secrets_,
                    ) -> Any:
                        return request_for(mode, stream, sim_url, url, sim_key, secrets_[i])

                    asyncio.run(
                        run_phase(
                            phase, options.seconds, options.warmup, make, server, options.keep_alive
                        )
                    )
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

                asyncio.run(
                    run_phase(
                        phase,
                        options.seconds,
                        options.warmup,
                        make_read,
                        process,
                        options.keep_alive,
                    )
                )
                reads.append((path, phase))
    finally:
        if litellm is not None:
            os.killpg(litellm.pid, signal.SIGTERM)
            try:
                litellm.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(litellm.pid, signal.SIGKILL)
                litellm.wait()
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
    if options.litellm:
        print()
        print(litellm_report(phases, options))
    print(f"load average at end: {load_average()}")
    for stream in (False, True):
        top = max(p.rps for p in phases if p.mode == "api" and p.stream == stream)
        line = (
            f"stream={stream}: best API throughput {top:.0f} req/s per worker = "
            f"{top / LITELLM_RPS:.1f}x LiteLLM's ~{LITELLM_RPS:.0f} req/s"
        )
        if options.litellm:
            theirs = max(p.rps for p in phases if p.mode == "litellm" and p.stream == stream)
            line += f"; {top / theirs:.1f}x LiteLLM's {theirs:.0f} req/s measured in this run"
        print(line)


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
        "--keep-alive",
        action="store_true",
        help="each client reuses its connections (as the openai SDK does) instead of opening "
        "one per request",
    )
    parser.add_argument(
        "--litellm",
        default="",
        help="path to the `litellm` command of a LiteLLM installed apart (see the docstring): "
        "measure its proxy in the same run, with the same clients and simulator",
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
