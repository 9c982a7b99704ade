"""Settings, read from the environment only (see README "Configuration" and .env.example).

Nothing else in the project reads ``os.environ``. A malformed value stops the process with one
line naming the variable.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dj_database_url

from chatsite.env import Env, EnvError

BASE_DIR = Path(__file__).resolve().parent.parent


def _local_secret_key() -> str:
    """A key generated once into .data/ so local sessions survive restarts."""
    path = DATA_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    path.write_text(key)
    path.chmod(0o600)
    return key


def _trusted_origins(env: Env, port: int) -> list[str]:
    default = [f"http://localhost:{port}", f"http://127.0.0.1:{port}"]
    origins = env.items("CSRF_TRUSTED_ORIGINS", default)
    for origin in origins:
        parts = urlsplit(origin)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
        ):
            raise EnvError(
                f"CSRF_TRUSTED_ORIGINS entries must look like https://chat.example.com[:port], "
                f"got {origin!r}"
            )
    return origins


try:
    env = Env()
    # Local state of the embedded defaults (generated secret key, embedded database).
    DATA_DIR: Path = Path(env.text("DATA_DIR", str(BASE_DIR / ".data")))
    DEBUG: bool = env.flag("DEBUG", False)
    PORT: int = env.port("PORT", 8000)
    SECRET_KEY: str = env.text("SECRET_KEY")
    if not SECRET_KEY:
        if not DEBUG:
            raise EnvError("SECRET_KEY must be set when DEBUG is off")
        SECRET_KEY = _local_secret_key()
    ALLOWED_HOSTS: list[str] = env.items("ALLOWED_HOSTS", ["localhost", "127.0.0.1"])
    CSRF_TRUSTED_ORIGINS: list[str] = _trusted_origins(env, PORT)

    _database_url = env.url("DATABASE_URL", ("postgres", "postgresql"))
    if _database_url is None:
        raise EnvError(
            "DATABASE_URL is not set (`make run` and `make test` start an embedded PostgreSQL "
            "and set it for you)"
        )
    REDIS_URL: str | None = env.url("REDIS_URL", ("redis", "rediss", "unix"))

    DEEPSEEK_API_KEY: str = env.text("DEEPSEEK_API_KEY")
    DEEPSEEK_BASE_URL: str | None = env.url(
        "DEEPSEEK_BASE_URL", ("http", "https"), "https://api.deepseek.com"
    )
    # True when the upstream is the bundled simulator; the page header says so.
    DEEPSEEK_SIMULATED: bool = env.flag("DEEPSEEK_SIMULATED", False)
    # Upstream timeouts (seconds); see conversations/upstream/.
    UPSTREAM_CONNECT_TIMEOUT: float = env.number("UPSTREAM_CONNECT_TIMEOUT", 10.0)
    UPSTREAM_IDLE_TIMEOUT: float = env.number("UPSTREAM_IDLE_TIMEOUT", 180.0)
    UPSTREAM_QUEUE_TIMEOUT: float = env.number("UPSTREAM_QUEUE_TIMEOUT", 600.0)
    UPSTREAM_DEADLINE: float = env.number("UPSTREAM_DEADLINE", 900.0)
    UPSTREAM_MAX_CONNECTIONS: int = env.integer("UPSTREAM_MAX_CONNECTIONS", 1000, minimum=1)

    TIME_ZONE: str = env.text("TIME_ZONE", "UTC")
    try:
        ZoneInfo(TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        raise EnvError(
            f"TIME_ZONE must be an IANA time zone name such as UTC or Europe/Paris, "
            f"got {TIME_ZONE!r}"
        ) from None
    LOG_LEVEL: str = env.text("LOG_LEVEL", "INFO").upper()
    if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise EnvError(
            f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {LOG_LEVEL!r}"
        )
    # Password of the superuser `make run` creates on first run (random and printed when unset).
    ADMIN_PASSWORD: str = env.text("ADMIN_PASSWORD")
    SHUTDOWN_GRACE_SECONDS: float = env.number("SHUTDOWN_GRACE_SECONDS", 20.0)
    # The time a client has to send a request's headers and body, from its first byte: past it
    # a 408 and the connection closed (chatsite/twisted_requests.py). Twisted's own idle timeout
    # (60 s) restarts with every byte, so a client trickling a byte a minute held a connection
    # for ever. Responses (streams) and websockets are not bounded by it.
    REQUEST_RECEIVE_TIMEOUT_SECONDS: float = env.number(
        "REQUEST_RECEIVE_TIMEOUT_SECONDS", 60.0, minimum=1.0
    )
    # Running replies' rows are heartbeated this often; a row silent for GENERATION_STALE_SECONDS
    # belongs to a dead process and is reaped (marked interrupted) by any live one.
    GENERATION_HEARTBEAT_SECONDS: float = env.number(
        "GENERATION_HEARTBEAT_SECONDS", 10.0, minimum=0.1
    )
    GENERATION_STALE_SECONDS: float = env.number("GENERATION_STALE_SECONDS", 35.0, minimum=1.0)
    # Conversation sockets one worker process holds open at once per signed-in account, and per
    # client address for anonymous viewers of public share links: each holds memory and a
    # channel group, so one client opening thousands would exhaust the worker.
    WEBSOCKETS_PER_ACCOUNT: int = env.integer("WEBSOCKETS_PER_ACCOUNT", 100, minimum=1)
    WEBSOCKETS_PER_ANONYMOUS_ADDRESS: int = env.integer(
        "WEBSOCKETS_PER_ANONYMOUS_ADDRESS", 20, minimum=1
    )
    # Requests a client address may make to share links in a minute while not signed in (each
    # page, its messages.json and its socket's handshake one, whether the token is live or
    # not): each page reads a whole transcript, and guessing tokens is slowed as much.
    ANONYMOUS_LINK_REQUESTS_PER_MINUTE: int = env.integer(
        "ANONYMOUS_LINK_REQUESTS_PER_MINUTE", 60, minimum=1
    )
    # How long a database connection may go without an answer before it is given up: a route
    # that silently drops packets (a blackhole, a load balancer that lost its server) otherwise
    # hangs a statement for ever. The event loop's statements fail after it (conversations/
    # pgpool.py: the writes that must not be lost are tried again on a new connection); for
    # every connection, Django's too, the kernel is asked to give up after about as long
    # (TCP keepalives and tcp_user_timeout, below).
    DATABASE_STALL_TIMEOUT_SECONDS: float = env.number(
        "DATABASE_STALL_TIMEOUT_SECONDS", 15.0, minimum=1.0
    )
    # While the database cannot be reached, the event loop's pool (conversations/pgpool.py)
    # says so when it begins, then at most this often, with how long so far, and once it is
    # back: its tries to connect, about one a second, are not each a line of the log.
    DATABASE_OUTAGE_LOG_SECONDS: float = env.number(
        "DATABASE_OUTAGE_LOG_SECONDS", 60.0, minimum=1.0
    )
except EnvError as error:
    sys.exit(f"configuration error: {error}")

_database = dj_database_url.parse(_database_url, conn_max_age=0)
_keepalive_interval = max(1, round(DATABASE_STALL_TIMEOUT_SECONDS / 3))  # whole seconds
# What the URL's query string says (sslmode, options, ...) is kept, and completed.
_url_options: dict[str, Any] = _database.pop("OPTIONS", {})
DATABASES = {
    "default": {
        **_database,
        # Django's backend, whose pool does not hand out connections the server has closed.
        "ENGINE": "chatsite.postgres",
        "CONN_MAX_AGE": 0,
        "OPTIONS": {
            "connect_timeout": 5,
            # A connection whose packets go unacknowledged (tcp_user_timeout) or whose idle
            # socket, a statement waiting for its answer included, stops answering keepalive
            # probes is closed by the kernel within about 1.3 x DATABASE_STALL_TIMEOUT_SECONDS,
            # instead of the ~15 minutes of retransmissions (or for ever, idle) of the defaults.
            # A healthy server's kernel acknowledges both however long a statement runs.
            "keepalives": 1,
            "keepalives_idle": _keepalive_interval,
            "keepalives_interval": _keepalive_interval,
            "keepalives_count": 3,
            "tcp_user_timeout": round(DATABASE_STALL_TIMEOUT_SECONDS * 1000),
            **_url_options,
            # Django's built-in psycopg 3 pool; connections are returned after each request.
            "pool": {"min_size": 1, "max_size": 20, "timeout": 5},
            # No JIT compilation: the planner compiles any plan whose estimated cost passes
            # jit_above_cost, and on small, never-analysed tables its guesses pass it for
            # statements that touch two rows; compiling then costs 20-40 ms (GET /v1/models
            # took 25 ms instead of 1 on a PostgreSQL built with LLVM). Our statements are
            # short: JIT never pays for itself here.
            "options": " ".join(filter(None, [_url_options.get("options"), "-c jit=off"])),
        },
    }
}

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chatsite.layers.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 reads with a 5 s socket timeout by default, the same as
                # channels_redis's blocking pop: every idle receive would fail. Read longer.
                # redis-py 8 caps a pool at 100 connections and fails past it at once
                # (MaxConnectionsError): 100 sockets joining their groups at one moment on one
                # worker closed some with 1011. Redis itself takes 10,000 clients.
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": 15,
                        "socket_connect_timeout": 5,
                        "max_connections": 1000,
                    }
                ],
                "capacity": 1500,
                "expiry": 30,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "chatsite.layers.ThrottledInMemoryChannelLayer"}}

INSTALLED_APPS = [
    "daphne",
    # Before django.contrib.auth: our createsuperuser and changepassword (Django's, audited)
    # take the place of its own (the first app with a command of that name wins). It ships no
    # templates, static files or translations whose order would matter, and registers its
    # admin after auth's (conversations/admin.py imports django.contrib.auth.admin).
    "conversations",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django.contrib.humanize",  # intcomma: token counts in the millions, readable
    "channels",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "chatsite.security.PrivateByDefaultMiddleware",  # after the static files, before the rest
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "conversations.signin.DeviceCookieMiddleware",
    "chatsite.logs.RequestLogMiddleware",
    "chatsite.security.RefuseNulMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "chatsite.security.ContentSecurityPolicyMiddleware",
    "chatsite.outages.DatabaseUnavailableMiddleware",  # last: a view's exception reaches it first
]

ROOT_URLCONF = "chatsite.urls"
ASGI_APPLICATION = "chatsite.asgi.application"
AUTH_USER_MODEL = "conversations.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "conversations.views.site_context",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "conversation-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
# The largest request body Django reads into memory: a conversation import (JSON) up to 5 MB.
# conversations.views refuses anything larger with its own JSON error.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5_000_000
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "chatsite.logs.ContextFilter"},
        "safe_lines": {"()": "chatsite.logs.SafeLineFilter"},
    },
    "formatters": {
        "line": {
            "format": "%(asctime)s %(levelname)s %(name)s req=%(request_id)s "
            "user=%(user_id)s %(message)s",
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["context", "safe_lines"],
            "formatter": "line",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's lines through the root's handler only: its default one (with DEBUG on) wrote
        # them a second time, as they came (a link's token in a path included).
        "django": {"handlers": []},
        # Our request log line replaces Django's; httpx would log upstream URLs per request.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}
