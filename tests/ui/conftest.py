"""Browser tests: a real daphne server on the test database, the simulator as the upstream, and
the system Chromium driven by Playwright. Rows a test creates must be committed
(``transactional_db``) so the server process sees them."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest

from chatsite.launcher import daphne_command

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

    from conversations.models import Conversation, ModelConfig, Team, User

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = PROJECT_ROOT / "test-results" / "screenshots"
SIM_KEY = "sk-ui-test-0123456789abcdef"

# No skip when Chromium is missing: `make test` installs it, and a browser test that silently
# does not run proves nothing.


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{db['NAME']}"


@dataclass
class LiveServer:
    url: str
    simulator_url: str
    log: Path


@pytest.fixture(scope="session")
def chat_server(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """daphne serving chatsite on a free port against the test database and a simulator."""
    from simulator.testing import start_simulator_process

    with django_db_blocker.unblock():
        database_url = _database_url()
    simulator, simulator_url = start_simulator_process(
        api_key=SIM_KEY, tokens_per_s=150, seed=7, log_level="warning"
    )
    port = _free_port()
    origin = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("daphne") / "daphne.log"
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": database_url,
        "DEEPSEEK_BASE_URL": simulator_url,
        "DEEPSEEK_API_KEY": SIM_KEY,
        "CSRF_TRUSTED_ORIGINS": origin,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PORT": str(port),
        "SECRET_KEY": "ui-tests-only-" + "x" * 40,
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the server keeps Django's async safety checks
    with log.open("w") as log_file:
        server = subprocess.Popen(
            daphne_command(port),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{origin}/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("daphne did not start:\n" + log.read_text())
            time.sleep(0.2)
        yield LiveServer(url=origin, simulator_url=simulator_url, log=log)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        simulator.terminate()
        simulator.wait(timeout=10)


@pytest.fixture(autouse=True)
def _content_types_as_the_server_cached_them(django_db_reset_sequences: None) -> None:
    """The one server of the session caches content type ids (the admin's log entries name
    them), while each test's flush makes the content types again with new ids: a test saving
    in the admin after another had shown the same kind of row failed on a foreign key
    (``django_admin_log.content_type_id``). Sequences reset at each test's start make every
    flush make them again with the same ids, 1 onwards in the same order; content types left
    with other ids (by the migrations, or by a test outside this folder) are made again so.

    Rows left from before the test (the migrations' seed, such as the default policy, when no
    flush has run yet) then keep their ids: each sequence is moved past its table's rows, or
    the test's first row of such a table took id 1 again (a unique violation)."""
    from django.apps import apps
    from django.contrib.contenttypes.models import ContentType
    from django.core.management.color import no_style
    from django.core.management.sql import emit_post_migrate_signal
    from django.db import connection

    if ContentType.objects.order_by("pk").values_list("pk", flat=True).first() != 1:
        ContentType.objects.all().delete()  # their permissions with them; nothing else yet
        emit_post_migrate_signal(0, False, "default")
    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), apps.get_models()):
            cursor.execute(statement)


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    """Chromium for one test. Per test, not per session: Playwright's sync API keeps an event
    loop running in this thread while it is open, which would break later asyncio tests."""
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait for what the page shows as long as actions wait for it (Playwright's own
    # default is 5 s): on a loaded machine a frame's round trip and the redraw after it can take
    # longer, and waiting longer weakens nothing (what shows at once passes at once).
    expect.set_options(timeout=15000)

    # The ORM calls a test makes between browser steps are plain synchronous calls; Django only
    # sees Playwright's loop and would refuse them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def ui_user(transactional_db: None) -> User:
    """Alice, committed so the server sees her."""
    from tests.support import make_user

    return make_user("alice", first_name="Alice")


@pytest.fixture
def ui_chat_model(transactional_db: None) -> ModelConfig:
    from conversations.models import ModelConfig
    from tests.conftest import ensure_registry_seed

    ensure_registry_seed()
    return ModelConfig.objects.get(name="deepseek-chat")


@pytest.fixture
def ui_conversation(ui_user: User, ui_chat_model: ModelConfig) -> Conversation:
    from conversations.models import Conversation

    return Conversation.objects.create(owner=ui_user, model=ui_chat_model, title="Deploy notes")


@pytest.fixture
def ui_teammate(transactional_db: None) -> User:
    """Bob, committed so the server sees him."""
    from tests.support import make_user

    return make_user("bob", first_name="Bob")


@pytest.fixture
def ui_team(ui_user: User, ui_teammate: User) -> Team:
    """Alice and Bob's team."""
    from conversations.models import Team

    team = Team.objects.create(name="ops")
    team.members.set([ui_user, ui_teammate])
    return team


@pytest.fixture
def teammate_session(
    browser: Browser, chat_server: LiveServer, ui_teammate: User
) -> Iterator[Session]:
    """Bob signed in, in a browser context of his own."""
    current = new_session(browser, chat_server, username="bob")
    yield current
    current.page.context.close()


def sign_in(page: Page, server: LiveServer, username: str = "alice") -> None:
    from tests.support import PASSWORD

    page.goto(f"{server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}/")


@dataclass
class Session:
    page: Page
    server: LiveServer
    dialogs: list[str]
    errors: list[str]

    def open(self, conversation: Conversation) -> None:
        self.page.goto(f"{self.server.url}/c/{conversation.id}/")
        self.wait_connected()

    def wait_connected(self) -> None:
        from playwright.sync_api import expect

        expect(self.page.locator("#connection-status")).to_have_text("Connected", timeout=15000)

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def new_session(
    browser: Browser, server: LiveServer, *, username: str = "alice", **context_options: Any
) -> Session:
    context = browser.new_context(**context_options)
    context.set_default_timeout(15000)
    page = context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "response",
        lambda response: (
            errors.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    page.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    sign_in(page, server, username)
    return Session(page=page, server=server, dialogs=dialogs, errors=errors)


@pytest.fixture
def session(
    browser: Browser, chat_server: LiveServer, ui_user: User, ui_chat_model: ModelConfig
) -> Iterator[Session]:
    """Alice signed in, in a fresh browser context."""
    current = new_session(browser, chat_server)
    yield current
    current.page.context.close()


def send(page: Page, text: str, *, tap: bool = False) -> None:
    """Type and send a message (Enter; `tap`: the Send button, as on a touch screen, where
    Enter adds a line); return once it and its reply are on the page."""
    from playwright.sync_api import expect

    messages = page.locator(".messages > article")
    before = messages.count()
    composer = page.get_by_role("textbox", name="Message", exact=True)
    composer.fill(text)
    if tap:
        page.get_by_role("button", name="Send", exact=True).click()
    else:
        composer.press("Enter")
    expect(messages).to_have_count(before + 2)


def wait_until_idle(page: Page, timeout: float = 30000) -> None:
    """No reply on the visible branch is being written."""
    from playwright.sync_api import expect

    expect(page.locator(".message.is-streaming")).to_have_count(0, timeout=timeout)
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_hidden()


def words(count: int, stem: str = "word") -> str:
    return " ".join(f"{stem}{i}" for i in range(count))
