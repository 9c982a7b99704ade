"""Django's own ``createsuperuser`` and ``changepassword`` change accounts as the admin does,
and are audited as it is, named as made by the command: an account created (its flags and
that its password was set, never the password) and a password set (never the password nor its
hash). Neither was recorded: our app came after django.contrib.auth, whose commands ran.

They run as ``make manage ARGS="createsuperuser"`` runs them (the launcher's ``manage``), in a
terminal of their own that the test answers, against the test's database."""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import time

import pytest
from django.core.management import call_command

from conversations.models import AuditEntry, User
from tests import servers

FIRST_PASSWORD = "a first password, 4 words"
NEW_PASSWORD = "the new password, 5 words"


class Terminal:
    """A command run by the launcher on a pseudo-terminal, answered prompt by prompt."""

    def __init__(self, *args: str) -> None:
        self.main, other = os.openpty()
        env = {**os.environ, "DATABASE_URL": servers.test_database_url(), "DEBUG": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chatsite.launcher", "manage", *args],
            stdin=other,
            stdout=other,
            stderr=other,
            env=env,
            cwd=servers.ROOT,
        )
        os.close(other)
        self.output = ""

    def read_until(self, text: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while text not in self.output:
            assert time.monotonic() < deadline, f"no {text!r} in {self.output!r}"
            ready, _, _ = select.select([self.main], [], [], 0.2)
            if ready:
                try:
                    self.output += os.read(self.main, 4096).decode(errors="replace")
                except OSError:  # the command ended
                    assert text in self.output, f"no {text!r} in {self.output!r}"

    def answer(self, prompt: str, line: str) -> None:
        self.read_until(prompt)
        self.output = self.output.split(prompt, 1)[1]
        os.write(self.main, line.encode() + b"\n")

    def finish(self, last_words: str) -> str:
        self.read_until(last_words)
        assert self.process.wait(30) == 0
        os.close(self.main)
        return self.output


def entries_of(user: User) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(target_type="user", target_id=str(user.pk)))


def assert_no_secret(entry: AuditEntry, user: User, *passwords: str) -> None:
    stored = json.dumps([entry.before, entry.after])
    assert user.password not in stored
    for password in passwords:
        assert password not in stored


@pytest.mark.django_db(transaction=True)
def test_make_manage_createsuperuser_creates_an_account_audited_as_made_by_it() -> None:
    terminal = Terminal("createsuperuser")
    terminal.answer("Username: ", "root2")
    terminal.answer("Email address: ", "")
    terminal.answer("Password: ", FIRST_PASSWORD)
    terminal.answer("Password (again): ", FIRST_PASSWORD)
    output = terminal.finish("Superuser created successfully.")
    assert FIRST_PASSWORD not in output  # not echoed

    user = User.objects.get(username="root2")
    assert user.check_password(FIRST_PASSWORD)
    (entry,) = entries_of(user)
    assert (entry.action, entry.actor, entry.actor_name) == (
        "create",
        None,
        "manage.py createsuperuser",
    )
    assert entry.before is None
    assert entry.after == {
        "username": "root2",
        "is_active": True,
        "is_staff": True,
        "is_superuser": True,
        "groups": [],
        "user_permissions": [],
        "group_policies": [],
        "password": "set",
    }
    assert_no_secret(entry, user, FIRST_PASSWORD)


@pytest.mark.django_db(transaction=True)
def test_make_manage_changepassword_is_audited_as_a_password_set_by_it(alice: User) -> None:
    terminal = Terminal("changepassword", "alice")
    terminal.answer("Password: ", NEW_PASSWORD)
    terminal.answer("Password (again): ", NEW_PASSWORD)
    output = terminal.finish("Password changed successfully")
    assert NEW_PASSWORD not in output

    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    (entry,) = entries_of(alice)
    assert (entry.action, entry.actor, entry.actor_name) == (
        "password",
        None,
        "manage.py changepassword",
    )
    assert (entry.before, entry.after) == (None, {"password": "set"})
    assert_no_secret(entry, alice, NEW_PASSWORD)


@pytest.mark.django_db
def test_createsuperuser_without_a_prompt_is_audited_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", FIRST_PASSWORD)
    call_command(
        "createsuperuser", "--noinput", "--username", "ops", "--email", "", stdout=io.StringIO()
    )
    user = User.objects.get(username="ops")
    (entry,) = entries_of(user)
    assert (entry.action, entry.actor_name, entry.after["password"]) == (
        "create",
        "manage.py createsuperuser",
        "set",
    )
    assert_no_secret(entry, user, FIRST_PASSWORD)


@pytest.mark.django_db
def test_createsuperuser_without_a_password_says_password_sign_in_is_disabled() -> None:
    call_command(
        "createsuperuser", "--noinput", "--username", "sso", "--email", "", stdout=io.StringIO()
    )
    user = User.objects.get(username="sso")
    (entry,) = entries_of(user)
    assert (entry.actor_name, entry.after["password"]) == ("manage.py createsuperuser", "disabled")
