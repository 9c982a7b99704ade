"""An embedded PostgreSQL's ``postmaster.pid`` left by an unclean stop (a reboot, a killed
container) can name a PID that is now another live process's: this launcher's own, its
parent's (make), or PID 1 after a container restart. Such a file is no running cluster: `make
run` starts its own (it refused, saying "already in use by another `make run`"), and `make
manage` does not send a command to a port nobody serves. A cluster counts as running only if
its port answers."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from chatsite.launcher import _running_cluster


def _pid_file(data_dir: Path, pid: int, port: int) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "postmaster.pid").write_text(
        f"{pid}\n{data_dir}\n1700000000\n{port}\n/tmp\n127.0.0.1\n  5432001  0\nready\n"
    )


def _unserved_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_file_naming_a_live_process_but_no_served_port_is_stale(tmp_path: Path) -> None:
    port = _unserved_port()
    for pid in (1, os.getpid(), os.getppid()):
        _pid_file(tmp_path / "pg", pid, port)
        assert _running_cluster(tmp_path / "pg") is None, pid


def test_a_served_port_of_a_live_process_is_a_running_cluster(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = int(server.getsockname()[1])
        _pid_file(tmp_path / "pg", 1, port)  # PID 1 lives; the port answers
        assert _running_cluster(tmp_path / "pg") == (1, port)
        _pid_file(tmp_path / "pg", os.getpid(), port)  # this very process: never another's
        assert _running_cluster(tmp_path / "pg") is None
