#!/usr/bin/env python
"""Django's command-line utility.

Configuration and connection faults end in one line, not a traceback.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    from ops.faults import describe_startup_fault

    try:
        from django.conf import settings

        settings.INSTALLED_APPS  # noqa: B018 - load settings now, so that their errors are ours
        execute_from_command_line(sys.argv)
    except Exception as exc:
        message = describe_startup_fault(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
