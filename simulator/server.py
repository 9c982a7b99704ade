"""Running the simulator under uvicorn, shared by `python -m simulator`, the Django command
and the test helpers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import uvicorn

from simulator.app import SimulatorApp, create_app
from simulator.config import PROFILES, SimulatorConfig


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before uvicorn starts so `port=0` resolves to a real port we can announce."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it, a response written in several pieces on
    # a reused connection waits ~40 ms for the client's delayed ACK (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def build_server(app: SimulatorApp, *, log_level: str = "warning") -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_level=log_level,
        lifespan="on",
        access_log=False,
        # Benchmarks open hundreds of concurrent streams; keep the backlog and keep-alive
        # generous, and bound shutdown so a stalled stream cannot hold it forever.
        backlog=2048,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


async def serve(
    config: SimulatorConfig,
    host: str,
    port: int,
    on_ready: Callable[[str], None] | None = None,
    *,
    log_level: str = "warning",
) -> None:
    """Serve until cancelled or signalled; `on_ready(base_url)` runs once the port accepts."""
    app = create_app(config)
    server = build_server(app, log_level=log_level)
    sock = bind_socket(host, port)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    # uvicorn exposes readiness only as the `started` flag, so poll it.
    while not server.started and not task.done():  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    if server.started and on_ready is not None:
        on_ready(base_url(sock))
    await task


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line knobs, shared with the `deepseek_simulator` management command."""
    defaults = SimulatorConfig()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument("--profile", choices=PROFILES, default=defaults.profile)
    parser.add_argument(
        "--api-key", default=None, help="accept only this key (default: any sk-...)"
    )
    parser.add_argument("--first-token-latency", type=float, default=defaults.first_token_latency_s)
    parser.add_argument(
        "--tokens-per-s", type=float, default=defaults.tokens_per_s, help="0 = unlimited"
    )
    parser.add_argument("--chunk-tokens", type=int, default=defaults.chunk_tokens)
    parser.add_argument("--keepalive-interval", type=float, default=defaults.keepalive_interval_s)
    parser.add_argument("--queue-delay", type=float, default=defaults.queue_delay_s)
    parser.add_argument("--queue-timeout", type=float, default=defaults.queue_timeout_s)
    parser.add_argument("--max-concurrency", type=int, default=None)
    parser.add_argument("--usage-placement", choices=("finish", "trailing"), default="finish")
    parser.add_argument("--reasoner-input-policy", choices=("reject", "ignore"), default="reject")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--context-length", type=int, default=None)
    parser.add_argument("--log-level", default="warning")


def config_from_options(options: Mapping[str, Any]) -> SimulatorConfig:
    """Map parsed command-line options (argparse or Django) onto a SimulatorConfig."""
    return SimulatorConfig(
        profile=options["profile"],
        api_key=options["api_key"],
        first_token_latency_s=float(options["first_token_latency"]),
        tokens_per_s=float(options["tokens_per_s"]),
        chunk_tokens=int(options["chunk_tokens"]),
        keepalive_interval_s=float(options["keepalive_interval"]),
        queue_delay_s=float(options["queue_delay"]),
        queue_timeout_s=options["queue_timeout"],
        max_concurrency=options["max_concurrency"],
        usage_placement=options["usage_placement"],
        reasoner_input_policy=options["reasoner_input_policy"],
        seed=int(options["seed"]),
        context_length=options["context_length"],
    )


def run(options: Mapping[str, Any], out: Callable[[str], None] | None = None) -> None:
    """Run until interrupted, printing the one "listening on" line launchers wait for."""
    config = config_from_options(options)
    host = str(options.get("host") or "127.0.0.1")
    port = int(options.get("port") or 0)

    def announce(url: str) -> None:
        line = f"DeepSeek simulator (profile {config.profile}) listening on {url}"
        if out is not None:
            out(line)
        else:
            print(line, flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve(
                config, host, port, announce, log_level=str(options.get("log_level") or "warning")
            )
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m simulator", description="Fake DeepSeek API server"
    )
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    run(options)
    sys.stdout.flush()
