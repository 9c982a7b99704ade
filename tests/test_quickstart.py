"""`make run` on a clean machine's defaults: it starts, lets the admin sign in, and stops clean."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sign_in(base: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=10)
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token is not None
    response = client.post(
        "/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)},
        headers={"Referer": f"{base}/accounts/login/"},
    )
    assert response.status_code == 302, response.text
    return client


def wait_ready(base: str, process: subprocess.Popen[str], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "make run exited early"
        try:
            if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail("make run never became ready")


@pytest.mark.timeout(300)
def test_make_run_starts_on_embedded_defaults_and_stops_everything() -> None:
    data_dir = ROOT / ".data" / f"quickstart-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "DATABASE_URL",
            "DEEPSEEK_API_KEY",
            "REDIS_URL",
            "DEEPSEEK_BASE_URL",
            "DEEPSEEK_SIMULATED",
            "DEBUG",
            "SECRET_KEY",
        )
    }
    env.update(
        {"DATA_DIR": str(data_dir), "PORT": str(port), "ADMIN_PASSWORD": "quick start passphrase"}
    )
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        ["make", "run"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_ready(base, process)
        started = psutil.Process(process.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in started)
        assert "postgres" in names and "daphne" in names and "simulator" in names

        client = sign_in(base, "admin", "quick start passphrase")
        home = client.get("/")
        assert home.status_code == 200
        assert "Simulator" in home.text  # nobody mistakes the simulator for DeepSeek
        assert client.get("/admin/").status_code == 200

        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        output, _ = process.communicate(timeout=60)
        assert "serving on http://127.0.0.1:" in output
        assert "simulator" in output
        # Ctrl-C is how it is meant to stop: said as done, not as make's "*** [run] Error 130".
        # (make, sent the SIGINT too, ends by it once the launcher has ended well; a failure of
        # the launcher's would be make's status 2 and its "*** … Error" line.)
        assert process.returncode in (0, -signal.SIGINT), output
        assert "Error" not in output
        assert "[make] stopped (" in output and "postgres" in output.split("[make] stopped")[1]
        _gone, alive = psutil.wait_procs(started, timeout=10)
        assert alive == [], f"left running: {alive}"
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{base}/healthz", timeout=2)
        assert (data_dir / "pg" / "PG_VERSION").exists()  # the data persists for the next run
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("taken", [True, False], ids=["port in use", "not a port"])
def test_make_run_says_at_once_when_it_cannot_serve_on_its_port(taken: bool) -> None:
    data_dir = ROOT / ".data" / f"quickstart-{uuid.uuid4().hex[:8]}"
    holder = socket.socket()
    try:
        if taken:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = str(holder.getsockname()[1])
        else:
            port = "80a"
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORT")}
        env.update({"DATA_DIR": str(data_dir), "PORT": port})
        started = time.monotonic()
        result = subprocess.run(
            ["make", "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=110
        )
        assert result.returncode != 0
        output = result.stdout + result.stderr
        if taken:
            assert f"cannot listen on 127.0.0.1:{port}" in output and "PORT=" in output
        else:
            assert "configuration error: PORT must be an integer, got '80a'" in output
        assert "serving on" not in output
        # Nothing was started: no database was created for the run.
        assert not (data_dir / "pg").exists()
        assert time.monotonic() - started < 100
    finally:
        holder.close()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.timeout(120)
def test_make_run_with_a_key_says_which_upstream_answers_and_never_the_key() -> None:
    """With DEEPSEEK_API_KEY set there is no simulator, and `make run` says where answers come
    from (it said nothing: only the simulator's line told a new admin anything), without any
    part of the key, nor a credential the address carries (a user and password, a query)."""
    data_dir = ROOT / ".data" / f"quickstart-{uuid.uuid4().hex[:8]}"
    port = free_port()
    key = "sk-quickstart-" + uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "DEBUG", "SECRET_KEY")}
    env.update(
        {
            "DATA_DIR": str(data_dir),
            "PORT": str(port),
            "DEEPSEEK_API_KEY": key,
            "DEEPSEEK_BASE_URL": f"http://gateway:{key[-8:]}@127.0.0.1:9/upstream?token={key[-6:]}",
        }
    )
    process = subprocess.Popen(
        ["make", "run"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)
        assert "DEEPSEEK_API_KEY is set: answers come from http://127.0.0.1:9/upstream" in output
        assert "simulator" not in output.split("[make] stopped")[0].lower()
        assert key[-4:] not in output and key[-6:] not in output and key[-8:] not in output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(data_dir, ignore_errors=True)
