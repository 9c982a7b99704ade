"""Fixtures. Django is imported lazily so the simulator and client tests also run alone
(``pytest -p no:django tests/test_simulator_*.py``)."""

from __future__ import annotations

import importlib
import multiprocessing
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conversations.models import Conversation, ModelConfig, User

# A live-server browser test can hang after async tests with the default "fork".
multiprocessing.set_start_method("spawn", force=True)

#: The upstream of a test that starts none: the discard port on loopback, closed here.
NO_UPSTREAM = "http://127.0.0.1:9"


@pytest.fixture(scope="session", autouse=True)
def _in_process_channel_layer(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests inside this process use the in-memory layer (one event loop per test does not
    suit a Redis connection pool); Redis is exercised between real worker processes
    (tests/test_two_workers.py), which get REDIS_URL.

    And no test reaches the internet: the upstream is the simulator (``simulator``), and a test
    without one that starts the generation service (which asks the upstream for its models)
    finds a closed local port, not DeepSeek's address (a DNS lookup and an HTTPS attempt that
    hang or fail offline)."""
    if not request.config.pluginmanager.has_plugin("django"):
        yield
        return
    from django.test.utils import override_settings

    with override_settings(
        CHANNEL_LAYERS={"default": {"BACKEND": "chatsite.layers.ThrottledInMemoryChannelLayer"}},
        DEEPSEEK_BASE_URL=NO_UPSTREAM,
    ):
        yield


@pytest.fixture(autouse=True)
def _readiness_checked_afresh() -> None:
    """Each test's first /readyz makes its own check: the process reuses an answer for a
    second (``views.READINESS_FRESH_SECONDS``), and one left by the test before, of another
    database's state, would stand for this one's."""
    from conversations import views

    views._readiness = None


@pytest.fixture(autouse=True)
def _api_calls_settled_before_the_flush(request: pytest.FixtureRequest) -> Iterator[None]:
    """An API call is settled just after its answer's last byte (and, for a key that saves
    history, copied to a conversation just after that), so a test may end (and its database be
    flushed) while a worker still writes for the call it has just answered: the flush and those
    writes can deadlock. A test on a flushed database waits for them first
    (``calls_written_before_a_flush``)."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        yield
        return
    request.getfixturevalue("transactional_db")  # set up before this one: flushed after it
    yield
    from tests.test_api_support import calls_written_before_a_flush

    calls_written_before_a_flush()


@pytest.fixture
def alice(db: None) -> User:
    """Alice owns conversations."""
    from tests.support import make_user

    return make_user("alice", first_name="Alice")


@pytest.fixture
def bob(db: None) -> User:
    """Bob is Alice's teammate."""
    from tests.support import make_user

    return make_user("bob", first_name="Bob")


@pytest.fixture
def charlie(db: None) -> User:
    """Charlie is a stranger to Alice."""
    from tests.support import make_user

    return make_user("charlie", first_name="Charlie")


@pytest.fixture
def staff(db: None) -> User:
    from tests.support import make_user

    return make_user("sam", is_staff=True, is_superuser=True)


def ensure_registry_seed() -> None:
    """Transactional tests flush the tables, seed rows included: put them back."""
    from django.apps import apps

    from conversations.models import ModelConfig

    seed_migration = importlib.import_module("conversations.migrations.0002_seed_models")
    if ModelConfig.objects.filter(name__in=["deepseek-chat", "deepseek-reasoner"]).count() != 2:
        seed_migration.seed(apps, None)


@pytest.fixture
def chat_model(db: None) -> ModelConfig:
    from conversations.models import ModelConfig

    ensure_registry_seed()
    return ModelConfig.objects.get(name="deepseek-chat")


@pytest.fixture
def reasoner_model(db: None) -> ModelConfig:
    from conversations.models import ModelConfig

    ensure_registry_seed()
    return ModelConfig.objects.get(name="deepseek-reasoner")


@pytest.fixture
def alice_conversation(alice: User, chat_model: ModelConfig) -> Conversation:
    from conversations.models import Conversation

    return Conversation.objects.create(owner=alice, model=chat_model, title="Deploy notes")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's, plus: Django's pool keeps connections open, and the test database
    cannot be dropped under them, so the pool is closed first."""
    yield
    from django.db import connections

    with django_db_blocker.unblock():
        for connection in connections.all():
            if getattr(connection, "pool", None) is not None:
                connection.close_pool()
        # The ORM threads of async tests hold pools of their own, out of reach here: their
        # sessions are ended from outside, or the drop fails ("being accessed by other users").
        import psycopg

        default = connections["default"]
        params = {**default.get_connection_params(), "dbname": "postgres", "autocommit": True}
        with psycopg.connect(**params) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                [default.settings_dict["NAME"]],
            )


# --- the engine: simulator upstream, websocket clients --------------------------------------


@pytest.fixture(scope="module")
def base(request: pytest.FixtureRequest, django_db_setup: None) -> Iterator[str]:
    """A daphne worker serving the app against a simulator (``api_server``), one per test
    module; its base URL. A module may set ``SIMULATOR_OPTIONS`` (``SimulatorConfig`` fields)
    and ``WORKER_SETTINGS`` (the worker's environment settings) for its own worker."""
    from tests.test_api_support import api_server

    simulator_options = getattr(request.module, "SIMULATOR_OPTIONS", {})
    worker_settings = getattr(request.module, "WORKER_SETTINGS", None)
    with api_server(worker_settings=worker_settings, **simulator_options) as url:
        yield url


@pytest.fixture
def simulator(settings: Any) -> Iterator[str]:
    """A simulator on a real loopback port, configured as the app's upstream."""
    from simulator.testing import running_simulator
    from tests.support import SIM_KEY

    with running_simulator(api_key=SIM_KEY, tokens_per_s=400, seed=7) as base_url:
        settings.DEEPSEEK_BASE_URL = base_url
        settings.DEEPSEEK_API_KEY = SIM_KEY
        yield base_url


@pytest.fixture
def slow_simulator(settings: Any) -> Iterator[str]:
    """A simulator pacing replies at 40 tokens/s, for tests that act mid-stream."""
    from simulator.testing import running_simulator
    from tests.support import SIM_KEY

    with running_simulator(api_key=SIM_KEY, tokens_per_s=40, seed=7) as base_url:
        settings.DEEPSEEK_BASE_URL = base_url
        settings.DEEPSEEK_API_KEY = SIM_KEY
        yield base_url


@pytest.fixture
def proxied_pool(settings: Any) -> Iterator[Any]:
    """The event loop's pool (final writes, checkpoints, the API's statements) reaches
    PostgreSQL through a real TCP proxy (``tests/pgproxy.py``) that a test can cut or make
    lose an answer; Django's own connections (the test's reads) do not. Asked for before the
    pool is first used (before ``generation_service``)."""
    from django.db import connection

    from tests.pgproxy import pg_proxy

    db = connection.settings_dict
    with pg_proxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)) as proxy:
        # Read by the pool only (Django's connections were configured at startup).
        settings.DATABASES = {
            **settings.DATABASES,
            "default": {**db, "HOST": "127.0.0.1", "PORT": str(proxy.port)},
        }
        yield proxy


@pytest.fixture
async def generation_service() -> AsyncIterator[Any]:
    """The loop's generation service, stopped cleanly at the end of the test."""
    from conversations.generation import get_service

    service = get_service()
    await service.ensure_started()
    yield service
    await service.stop()
