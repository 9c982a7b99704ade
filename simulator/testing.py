"""Helpers that run the simulator for tests (in a thread) and benchmarks (in a process)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from simulator.app import create_app
from simulator.config import SimulatorConfig
from simulator.server import base_url, bind_socket, build_server

_PROJECT_ROOT = Path(__file__).resolve().parent.parent
_READY_PREFIX = "DeepSeek simulator"


@contextmanager
def running_simulator(**config_kwargs: Any) -> Iterator[str]:
    """Serve a simulator built from `SimulatorConfig(**config_kwargs)` on a free 127.0.0.1 port.

    The server runs on its own event loop in a background thread, so this works from sync
    tests and from inside a running asyncio loop alike. Yields the base URL
    (`http://127.0.0.1:PORT`); append `/chat/completions`, `/beta/...` or `/v1/...` to it.
    """
    app = create_app(SimulatorConfig(**config_kwargs))
    server = build_server(app)
    sock = bind_socket("127.0.0.1", 0)
    loop = asyncio.new_event_loop()
    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.serve(sockets=[sock]))
        except BaseException as exc:  # surfaced to the caller below, not swallowed
            failure.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=serve, name="deepseek-simulator", daemon=True)
    thread.start()
    while not server.started:
        if failure or not thread.is_alive():
            sock.close()
            raise RuntimeError("DeepSeek simulator failed to start") from (
                failure[0] if failure else None
            )
        threading.Event().wait(0.01)
    try:
        yield base_url(sock)
    finally:
        if not loop.is_closed():
            loop.call_soon_threadsafe(app.begin_shutdown)
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def start_simulator_process(
    port: int | None = None, host: str = "127.0.0.1", **options: Any
) -> tuple[subprocess.Popen[str], str]:
    """Start `python -m simulator` in its own process and wait for its "listening on" line.

    `options` are command-line flags without dashes, e.g. `tokens_per_s=30` or
    `profile="legacy-2025"`. Returns the process (stop it with terminate()/wait()) and its
    base URL. Benchmarks use this so the simulator does not share a CPU core's event loop
    with the code under test.
    """
    args = [sys.executable, "-m", "simulator", "--host", host, "--port", str(port or 0)]
    for name, value in options.items():
        if value is None:
            continue
        args += [f"--{name.replace('_', '-')}", str(value)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(_PROJECT_ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    process = subprocess.Popen(
        args,
        cwd=_PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith(_READY_PREFIX) and " listening on " in line:
            url = line.rsplit(" listening on ", 1)[1].strip()
            # Keep draining output so a chatty server never blocks on a full pipe.
            threading.Thread(
                target=_drain, args=(process,), name="simulator-output", daemon=True
            ).start()
            return process, url
    process.wait()
    raise RuntimeError("DeepSeek simulator exited before listening:\n" + "".join(lines))


def _drain(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    for _ in process.stdout:
        pass


def sse_data(body: str) -> list[str]:
    """The payloads of the `data:` events of an SSE body, in order; comments are skipped."""
    payloads: list[str] = []
    for block in body.split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                payloads.append(line[len("data: ") :])
    return payloads


def sse_chunks(body: str) -> list[dict[str, Any]]:
    """The JSON chunks of an SSE body, without the closing `[DONE]`."""
    return [json.loads(p) for p in sse_data(body) if p != "[DONE]"]
