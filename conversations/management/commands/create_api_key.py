"""``python manage.py create_api_key <username> [--name N]``: print a new key for a user."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from conversations import api_keys
from conversations.errors import ChatError
from conversations.models import User

#: The key's creation is audited as made by this command, not by the key's owner.
AUDITED_AS = "manage.py create_api_key"


class Command(BaseCommand):
    help = "Create a personal API key for a user and print it (it is shown only once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="A name to recognise it by.")
        parser.add_argument(
            "--save-history",
            action="store_true",
            help="Record calls made with the key as conversations in the user's chats.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = User.objects.get(username=options["username"])
        except User.DoesNotExist:
            raise CommandError(f"No user named {options['username']!r}.") from None
        try:
            new = api_keys.create_key(
                user,
                name=options["name"],
                save_history=options["save_history"],
                actor=AUDITED_AS,
            )
        except ChatError as error:
            raise CommandError(error.message) from None
        self.stdout.write(new.secret)
