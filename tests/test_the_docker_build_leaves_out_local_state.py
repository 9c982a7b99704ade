"""`docker compose up --build` after `make run`: the image is built from the project's files, not
from the local state beside them — the embedded PostgreSQL in .data (every account, password
hash and conversation), the generated secret key, the virtualenv, the history, a local .env.

The Dockerfile copies the whole context (`COPY . .`), so what leaves these out is
.dockerignore, read here with Docker's rules: a pattern is a path from the context's root, `*`
and `?` stay within a path segment, `**` spans any number of them, `!` takes a path back, and a
directory left out takes everything under it along."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LOCAL_STATE = [
    ".data/pg/PG_VERSION",
    ".data/pg/base/16384/2619",
    ".data/pg.log",
    ".data/secret_key",
    ".data/staticfiles/css/app.css",
    ".venv/bin/python",
    ".venv/lib/python3.11/site-packages/django/__init__.py",
    ".git/HEAD",
    ".git/objects/pack/pack-0.pack",
    ".env",
    "test-results/screenshots/page.png",
    "conversations/__pycache__/models.cpython-311.pyc",
    "tests/ui/__pycache__/conftest.cpython-311.pyc",
    ".mypy_cache/3.11/cache.db",
    ".pytest_cache/v/cache/lastfailed",
]


def _pattern(text: str) -> re.Pattern[str]:
    text = text.strip().lstrip("/").removeprefix("./").rstrip("/")
    out = ""
    i = 0
    while i < len(text):
        if text.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif text.startswith("**", i):
            out, i = out + ".*", i + 2
        elif text[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif text[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(text[i]), i + 1
    return re.compile(out + r"\Z")


def _rules() -> list[tuple[bool, re.Pattern[str]]]:
    ignore = ROOT / ".dockerignore"
    lines = ignore.read_text().splitlines() if ignore.exists() else []
    rules = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        rules.append((keep, _pattern(line.removeprefix("!"))))
    return rules


def in_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for keep, pattern in rules:  # the last pattern that matches decides
        if any(pattern.match(prefix) for prefix in prefixes):
            excluded = not keep
    return not excluded


def test_the_build_context_leaves_out_the_local_state_of_make_run() -> None:
    rules = _rules()
    sent = [path for path in LOCAL_STATE if in_context(path, rules)]
    assert sent == [], f"sent to the image: {sent}"


def test_the_build_context_keeps_every_file_of_the_project() -> None:
    rules = _rules()
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "requirements.lock" in tracked and "manage.py" in tracked
    left_out = [path for path in tracked if not in_context(path, rules)]
    assert left_out == []
