"""Create the superuser ``admin`` on first run (used by `make run`), audited as the admin's
account creations are."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from conversations import audit
from conversations.models import User

AUDITED_AS = "manage.py ensure_admin"


class Command(BaseCommand):
    help = "Create the superuser 'admin' if no superuser exists yet."

    def handle(self, *args: Any, **options: Any) -> None:
        password: str = getattr(settings, "ADMIN_PASSWORD", "")
        if User.objects.filter(is_superuser=True).exists():
            return
        chosen = password or secrets.token_urlsafe(12)
        admin = User.objects.create_superuser("admin", email="", password=chosen)
        # Audited as an account created in the admin is (never the password).
        audit.record(AUDITED_AS, "create", admin, None, audit.account_created(admin))
        if password:
            self.stdout.write("Created superuser 'admin' with the password from ADMIN_PASSWORD.")
        else:
            self.stdout.write(
                f"Created superuser 'admin' with password: {chosen}\n"
                "  (shown once; change it at /accounts/password/)"
            )
