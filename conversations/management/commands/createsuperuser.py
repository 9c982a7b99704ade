"""Django's ``createsuperuser``, audited: the account it creates is a ``create`` entry made by
``manage.py createsuperuser``, as an account created in the admin is (its flags and that its
password was set or sign-in by password disabled, never the password). Ours replaces
django.contrib.auth's because ``conversations`` comes before it in ``INSTALLED_APPS``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.management.commands import createsuperuser

from conversations import audit

AUDITED_AS = "manage.py createsuperuser"


class Command(createsuperuser.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        with audit.accounts_saved() as saved:
            try:
                super().handle(*args, **options)
            finally:  # whatever happened after, an account created is audited
                for user, created in saved:
                    if created:
                        audit.record(AUDITED_AS, "create", user, None, audit.account_created(user))
