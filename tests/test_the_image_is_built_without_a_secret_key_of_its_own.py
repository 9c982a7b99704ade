"""The image's build step (the Dockerfile's collectstatic, run with DEBUG on so that settings
load without a key) must not leave a secret key in the image. With DEBUG on and no SECRET_KEY,
settings generate one into $DATA_DIR/secret_key, as for `make run`: the build wrote
/app/.data/secret_key into a layer, one key shared by every container of the image and
readable by whoever has the image (a container started with DEBUG=1 signs its sessions with
it)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_collectstatic_step_writes_static_files_and_no_key(tmp_path: Path) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    step = next(
        line.removeprefix("RUN ").split("&&")[0]
        for line in dockerfile.splitlines()
        if line.startswith("RUN ") and "collectstatic" in line
    )
    words = shlex.split(step)
    assignments = [w for w in words if re.fullmatch(r"[A-Z_]+=.*", w)]
    command = words[len(assignments) :]
    assert command[:2] == ["python", "manage.py"], step
    env = {
        "PATH": os.environ["PATH"],
        **dict(a.split("=", 1) for a in assignments),
        # Where the image's /app/.data would be (the build sets no DATA_DIR: BASE_DIR/.data).
        "DATA_DIR": str(tmp_path),
    }
    subprocess.run([sys.executable, *command[1:]], cwd=ROOT, env=env, check=True)
    assert (tmp_path / "staticfiles" / "js" / "app.js").exists()
    assert not (tmp_path / "secret_key").exists()
