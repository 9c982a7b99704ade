"""Django's ``changepassword``, audited: a ``password`` entry made by ``manage.py
changepassword``, as a password an admin sets is (set, never the password nor its hash). Ours
replaces django.contrib.auth's because ``conversations`` comes before it in
``INSTALLED_APPS``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.management.commands import changepassword

from conversations import audit

AUDITED_AS = "manage.py changepassword"


class Command(changepassword.Command):
    def handle(self, *args: Any, **options: Any) -> str | None:
        with audit.accounts_saved() as saved:
            outcome = super().handle(*args, **options)
        for user, _created in saved:
            audit.record_password(AUDITED_AS, user)
        return outcome
