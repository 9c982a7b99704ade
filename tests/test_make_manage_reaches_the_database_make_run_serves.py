"""`make manage ARGS=…` while `make run` serves: the command runs against the same embedded
database (a second PostgreSQL cannot start on its directory), and a second `make run` on it says
so at once instead of failing after a minute with a traceback."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid

import httpx
import pytest

from tests.test_quickstart import ROOT, free_port, wait_ready


def clean_env(data_dir: str, port: int) -> dict[str, str]:
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
    env.update({"DATA_DIR": data_dir, "PORT": str(port), "ADMIN_PASSWORD": "manage passphrase"})
    return env


@pytest.mark.timeout(300)
def test_make_manage_while_make_run_serves_uses_its_database() -> None:
    data_dir = ROOT / ".data" / f"manage-{uuid.uuid4().hex[:8]}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    run = subprocess.Popen(
        ["make", "run"],
        cwd=ROOT,
        env=clean_env(str(data_dir), port),
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_ready(base, run)

        # The README's way to make a key for a script, while the app runs.
        started = time.monotonic()
        made = subprocess.run(
            ["make", "manage", "ARGS=create_api_key admin --name script"],
            cwd=ROOT,
            env=clean_env(str(data_dir), port),
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = made.stdout + made.stderr
        assert made.returncode == 0, output
        assert "Traceback" not in output
        assert time.monotonic() - started < 30
        key = next(word for word in output.split() if word.startswith("sk-team-"))
        models = httpx.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert models.status_code == 200, models.text  # the key is in the served database

        # A second `make run` on the same data says what is wrong, at once.
        started = time.monotonic()
        second = subprocess.run(
            ["make", "run"],
            cwd=ROOT,
            env=clean_env(str(data_dir), free_port()),
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = second.stdout + second.stderr
        assert second.returncode != 0
        assert "already in use" in output and "DATA_DIR" in output, output
        assert "Traceback" not in output
        assert time.monotonic() - started < 30
        assert httpx.get(f"{base}/readyz").status_code == 200  # the first one serves on
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGINT)
            try:
                run.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.timeout(300)
def test_an_embedded_database_that_cannot_start_is_said_at_once_with_its_log() -> None:
    data_dir = ROOT / ".data" / f"manage-{uuid.uuid4().hex[:8]}"
    env = clean_env(str(data_dir), free_port())
    try:
        first = subprocess.run(
            ["make", "manage", "ARGS=check"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert first.returncode == 0, first.stdout + first.stderr
        with (data_dir / "pg" / "postgresql.conf").open("a") as conf:
            conf.write("\nmax_connections = 'many'\n")  # PostgreSQL refuses to start on it

        started = time.monotonic()
        broken = subprocess.run(
            ["make", "manage", "ARGS=check"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = broken.stdout + broken.stderr
        assert broken.returncode != 0
        assert time.monotonic() - started < 30
        assert "Traceback" not in output
        assert "the embedded PostgreSQL stopped at once" in output, output
        assert f"{data_dir}/pg.log" in output and "max_connections" in output
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
