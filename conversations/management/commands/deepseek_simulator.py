"""`manage.py deepseek_simulator`: run the fake DeepSeek server (same code as `python -m simulator`)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from simulator.server import add_arguments, run


class Command(BaseCommand):
    help = "Run the DeepSeek simulator (a fake upstream API) for development and tests."

    def add_arguments(self, parser: CommandParser) -> None:
        add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        run(options, out=self._announce)

    def _announce(self, line: str) -> None:
        # Launchers wait for this line, so it must not sit in a buffer.
        self.stdout.write(line)
        self.stdout.flush()
