"""Settings come from the environment; bad values stop the process with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatsite.env import Env, EnvError, describe_url

ROOT = Path(__file__).resolve().parent.parent
GOOD_DB = "postgres://postgres@127.0.0.1:5432/postgres"


def load_settings(**overrides: str) -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh interpreter with exactly this environment."""
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": GOOD_DB, "DEBUG": "1", **overrides}
    env = {key: value for key, value in env.items() if value is not None}
    code = (
        "import json; from chatsite import settings as s; "
        "print(json.dumps({'debug': s.DEBUG, 'secure_cookie': getattr(s, 'SESSION_COOKIE_SECURE', False), "
        "'hsts': getattr(s, 'SECURE_HSTS_SECONDS', 0), 'proxy': getattr(s, 'SECURE_PROXY_SSL_HEADER', None), "
        "'hosts': s.ALLOWED_HOSTS, 'origins': s.CSRF_TRUSTED_ORIGINS, "
        "'db': s.DATABASES['default']['NAME'], 'max_age': s.DATABASES['default']['CONN_MAX_AGE'], "
        "'pool': bool(s.DATABASES['default']['OPTIONS'].get('pool')), "
        "'layer': s.CHANNEL_LAYERS['default']['BACKEND']}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], variable: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("configuration error:")
    assert variable in lines[0]


def test_booleans_accept_the_usual_spellings() -> None:
    for raw, expected in [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("on", True),
        ("0", False),
        ("off", False),
        ("", False),
    ]:
        assert Env({"X": raw}).flag("X") is expected
    assert Env({}).flag("X", True) is True


def test_a_malformed_boolean_names_the_variable() -> None:
    with pytest.raises(EnvError, match="DEBUG must be a boolean"):
        Env({"DEBUG": "maybe"}).flag("DEBUG")


def test_integers_and_lists_are_parsed_and_checked() -> None:
    assert Env({"PORT": " 8123 "}).integer("PORT", 8000) == 8123
    assert Env({}).integer("PORT", 8000) == 8000
    with pytest.raises(EnvError, match="PORT must be an integer"):
        Env({"PORT": "eighty"}).integer("PORT", 8000)
    with pytest.raises(EnvError, match="PORT must be at least 1"):
        Env({"PORT": "0"}).integer("PORT", 8000, minimum=1)
    with pytest.raises(EnvError, match="PORT must be at most 65535, got 70000"):
        Env({"PORT": "70000"}).port("PORT", 8000)
    assert Env({"PORT": "65535"}).port("PORT", 8000) == 65535
    assert Env({"HOSTS": "a.example, b.example,,"}).items("HOSTS", []) == ["a.example", "b.example"]


def test_urls_must_have_the_right_scheme_and_a_host() -> None:
    env = Env({"DATABASE_URL": "mysql://x@h/db"})
    with pytest.raises(EnvError, match="DATABASE_URL must start with one of postgres://"):
        env.url("DATABASE_URL", ("postgres", "postgresql"))
    with pytest.raises(EnvError, match="REDIS_URL is not a valid URL"):
        Env({"REDIS_URL": "redis://h:notaport"}).url("REDIS_URL", ("redis",))
    assert Env({"U": "redis://127.0.0.1:6379/0"}).url("U", ("redis",)) == "redis://127.0.0.1:6379/0"


def test_a_url_is_described_without_its_password() -> None:
    assert describe_url("postgres://u:s3cret@db:5432/chat") == "postgres://u@db:5432/chat"


def test_good_settings_load_with_the_pool_and_no_persistent_connections() -> None:
    result = load_settings()
    assert result.returncode == 0, result.stderr
    assert '"db": "postgres"' in result.stdout
    assert '"max_age": 0' in result.stdout
    assert '"pool": true' in result.stdout
    assert "InMemoryChannelLayer" in result.stdout


def test_redis_url_selects_the_redis_channel_layer() -> None:
    result = load_settings(REDIS_URL="redis://127.0.0.1:6379/1")
    assert result.returncode == 0, result.stderr
    assert "RedisChannelLayer" in result.stdout


def test_a_malformed_database_url_is_one_line_naming_it() -> None:
    assert_one_line_error(load_settings(DATABASE_URL="postgres://u@host:port/db"), "DATABASE_URL")
    assert_one_line_error(load_settings(DATABASE_URL="sqlite:///db.sqlite3"), "DATABASE_URL")


def test_a_missing_database_url_says_how_to_get_one() -> None:
    result = load_settings(DATABASE_URL="")
    assert_one_line_error(result, "DATABASE_URL")
    assert "make run" in result.stderr


def test_a_malformed_redis_url_is_one_line_naming_it() -> None:
    assert_one_line_error(load_settings(REDIS_URL="http://127.0.0.1:6379"), "REDIS_URL")


def test_a_malformed_boolean_is_one_line_naming_it() -> None:
    assert_one_line_error(load_settings(DEBUG="sometimes"), "DEBUG")


def test_a_bad_link_rate_limit_is_one_line_naming_it() -> None:
    for value in ("many", "0"):
        result = load_settings(ANONYMOUS_LINK_REQUESTS_PER_MINUTE=value)
        assert_one_line_error(result, "ANONYMOUS_LINK_REQUESTS_PER_MINUTE")


def test_an_unknown_time_zone_is_one_line_naming_it() -> None:
    assert_one_line_error(load_settings(TIME_ZONE="Mars/Olympus_Mons"), "TIME_ZONE")
    assert load_settings(TIME_ZONE="Europe/Paris").returncode == 0


def test_without_debug_a_secret_key_is_required() -> None:
    assert_one_line_error(load_settings(DEBUG="0"), "SECRET_KEY")


def test_without_debug_cookies_are_secure_and_hsts_and_proxy_ssl_are_on() -> None:
    result = load_settings(DEBUG="0", SECRET_KEY="x" * 50, ALLOWED_HOSTS="chat.example.com")
    assert result.returncode == 0, result.stderr
    assert '"secure_cookie": true' in result.stdout
    assert '"hsts": 31536000' in result.stdout
    assert '"proxy": ["HTTP_X_FORWARDED_PROTO", "https"]' in result.stdout
    assert '"hosts": ["chat.example.com"]' in result.stdout


def test_trusted_origins_default_to_the_local_port_and_are_validated() -> None:
    result = load_settings(PORT="8123")
    assert '"origins": ["http://localhost:8123", "http://127.0.0.1:8123"]' in result.stdout
    assert_one_line_error(
        load_settings(CSRF_TRUSTED_ORIGINS="chat.example.com"), "CSRF_TRUSTED_ORIGINS"
    )
