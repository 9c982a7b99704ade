#!/usr/bin/env python
"""Django's command-line utility.

Without DATABASE_URL it runs through the launcher, like `make manage`: against the embedded
PostgreSQL in .data/pg (started for the command, stopped after), in local (DEBUG) mode.
"""

import os
import sys


def main() -> None:
    if not os.environ.get("DATABASE_URL"):
        from chatsite.launcher import main as launch

        sys.exit(launch(["manage", *sys.argv[1:]]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
