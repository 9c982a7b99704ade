"""Real daphne workers for tests that need processes: several workers, kills, SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
from django.conf import settings
from django.test import Client

from chatsite.launcher import daphne_command

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_database_url(*, through_port: int | None = None) -> str:
    """The URL of the database pytest-django created, for servers in other processes; by way
    of a proxy on this machine's ``through_port`` if given (``tests.pgproxy``)."""
    db = settings.DATABASES["default"]
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    if through_port is not None:
        host, port = "127.0.0.1", through_port
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db.get('USER') or 'postgres'}{password}@{host}:{port}/{db['NAME']}"


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


@contextmanager
def daphne_worker(
    upstream: str,
    api_key: str,
    *,
    ready_path: str | None = "/readyz",
    output: Any = None,
    daphne_options: Sequence[str] = (),
    **env_overrides: str,
) -> Iterator[str]:
    """A daphne process serving the app; yields its base URL once ``ready_path`` answers 200
    (``/healthz`` for a worker whose database is meant to be down; None: once it accepts a
    connection, sent no request, for a worker that must see no traffic). Stopped with SIGTERM.
    ``output``: a file for its stdout and stderr (the test's own by default);
    ``daphne_options``: more of daphne's options (``--proxy-headers``, as the image runs it)."""
    port = free_port()
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": test_database_url(),
        "DEEPSEEK_BASE_URL": upstream,
        "DEEPSEEK_API_KEY": api_key,
        "PORT": str(port),
        "CSRF_TRUSTED_ORIGINS": f"http://127.0.0.1:{port}",
        "LOG_LEVEL": "WARNING",
        **env_overrides,
    }
    command = daphne_command(port)
    command[-1:-1] = daphne_options  # before the application's path
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "daphne exited"
            try:
                if ready_path is None:
                    socket.create_connection(("127.0.0.1", port), timeout=5).close()
                    break
                if httpx.get(f"{base}{ready_path}", timeout=5).status_code == 200:
                    break
            except (httpx.TransportError, OSError):
                pass
            assert time.monotonic() < deadline, "daphne never became ready"
            time.sleep(0.2)
        yield base
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def nginx_proxy(
    backend: str, directory: Path, *, site_body_limit: str | None = None
) -> Iterator[str]:
    """nginx with the compose deployment's site (``deploy/nginx.conf``) in front of the worker
    at ``backend``; yields its base URL. Its access log is ``directory / "access.log"``. Needs
    the ``nginx`` binary (``.ci/run`` installs it). ``site_body_limit`` replaces the site paths'
    ``client_max_body_size`` (an operator's tighter proxy)."""
    port = free_port()
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    if site_body_limit:
        assert "client_max_body_size 5m;" in site
        site = site.replace("client_max_body_size 5m;", f"client_max_body_size {site_body_limit};")
    site = site.replace("server web:8000;", f"server {backend.removeprefix('http://')};")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    site = site.replace("/var/log/nginx/access.log", str(directory / "access.log"))
    (directory / "site.conf").write_text(site)
    temp = " ".join(
        f"{kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (directory / "nginx.conf").write_text(
        f"daemon off; pid {directory / 'nginx.pid'}; error_log {directory / 'error.log'};\n"
        # As the nginx image has it: an access log in nginx's own format, unless the site
        # says otherwise.
        f"events {{}}\nhttp {{ access_log {directory / 'access.log'}; {temp} "
        f"include {directory / 'site.conf'}; }}\n"
    )
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    process = subprocess.Popen([binary, "-p", str(directory), "-c", str(directory / "nginx.conf")])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, (directory / "error.log").read_text()
            try:
                httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "nginx never answered"
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(10)


def session_cookie(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


class WorkerSocket:
    """A websocket client of a real worker (the `websockets` library, over TCP)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.frames: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, base: str, conversation_id: Any, cookie: str) -> WorkerSocket:
        return await cls.open_path(base, f"/ws/conversations/{conversation_id}/", cookie)

    @classmethod
    async def open_account(cls, base: str, cookie: str) -> WorkerSocket:
        """The account's socket, as a page on no conversation (the welcome page) has it."""
        return await cls.open_path(base, "/ws/account/", cookie)

    @classmethod
    async def open_path(cls, base: str, path: str, cookie: str) -> WorkerSocket:
        import websockets

        connection = await websockets.connect(
            base.replace("http://", "ws://") + path,
            origin=base,  # type: ignore[arg-type]
            additional_headers={"Cookie": f"sessionid={cookie}"},
        )
        socket = cls(connection)
        assert (await socket.receive())["type"] == "ready"
        return socket

    async def send(self, frame: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(frame))

    async def receive(self, timeout: float = 20) -> dict[str, Any]:
        import asyncio

        frame = json.loads(await asyncio.wait_for(self.connection.recv(), timeout))
        self.frames.append(frame)
        return frame

    async def until(self, kind: str | tuple[str, ...], timeout: float = 30) -> dict[str, Any]:
        kinds = (kind,) if isinstance(kind, str) else kind
        while True:
            frame = await self.receive(timeout)
            if frame["type"] in kinds:
                return frame

    async def close(self) -> None:
        await self.connection.close()


def worker_process(base: str) -> psutil.Process:
    """The daphne process serving ``base`` (a ``daphne_worker``'s URL): to signal or kill."""
    port = base.rsplit(":", 1)[1]
    [server] = [
        p
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"]
        and "daphne" in " ".join(p.info["cmdline"])
        and port in p.info["cmdline"]
    ]
    return server
