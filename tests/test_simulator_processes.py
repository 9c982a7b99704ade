from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from simulator.testing import start_simulator_process

ROOT = Path(__file__).resolve().parents[1]


def test_start_simulator_process_serves_on_the_announced_port() -> None:
    process, url = start_simulator_process(profile="legacy-2025", api_key="sk-bench", seed=3)
    try:
        assert url.startswith("http://127.0.0.1:")
        models = httpx.get(f"{url}/models", headers={"Authorization": "Bearer sk-bench"}).json()
        assert [m["id"] for m in models["data"]] == ["deepseek-chat", "deepseek-reasoner"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_python_m_simulator_prints_one_listening_line_with_the_real_port() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--tokens-per-s",
            "30",
            "--first-token-latency",
            "0.05",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith(
            "DeepSeek simulator (profile current-2026) listening on http://127.0.0.1:"
        )
        port = int(line.rsplit(":", 1)[1])
        assert port > 0
        response = httpx.post(
            f"http://127.0.0.1:{port}/chat/completions",
            headers={"Authorization": "Bearer sk-x"},
            json={
                "model": "deepseek-flash",
                "thinking": {"type": "disabled"},
                "messages": [{"role": "user", "content": "[[sim: say=hello there]]"}],
            },
        )
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == "hello there"
    finally:
        process.terminate()
        process.wait(timeout=10)
