"""Create the superuser ``admin`` on first run (used by `make run`)."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from conversations.models import User


class Command(BaseCommand):
    help = "Create the superuser 'admin' if no superuser exists yet."

    def handle(self, *args: Any, **options: Any) -> None:
        password: str = getattr(settings, "ADMIN_PASSWORD", "")
        if User.objects.filter(is_superuser=True).exists():
            return
        chosen = password or secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", email="", password=chosen)
        if password:
            self.stdout.write("Created superuser 'admin' with the password from ADMIN_PASSWORD.")
        else:
            self.stdout.write(
                f"Created superuser 'admin' with password: {chosen}\n"
                "  (shown once; change it at /accounts/password/)"
            )
