"""Django's command-line utility for Remora Admin: `manage.py` in a checkout, and
`python -m remora_admin` in an installed console (deploy/: a venv holds the wheel, no checkout).

A configuration error (a bad or missing environment variable: remora_admin/settings.py raises
ImproperlyConfigured naming it) is reported as one line on stderr and exit status 2, not as a
traceback; so is a database that cannot be reached (exit status 3). `--traceback` shows the
traceback as well.
"""

import os
import sys

CONFIGURATION_ERROR = 2
DATABASE_UNREACHABLE = 3


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "remora_admin.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from django.db import InterfaceError, OperationalError

    try:
        # Read the settings first: Django would otherwise swallow the error and report an
        # "Unknown command" for every command of ours, or a traceback.
        settings.INSTALLED_APPS  # noqa: B018
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        if "--traceback" in sys.argv:
            raise
        message = " ".join(str(exc).split())
        print(f"remora: configuration error: {message}", file=sys.stderr)
        sys.exit(CONFIGURATION_ERROR)
    except (OperationalError, InterfaceError) as exc:
        if "--traceback" in sys.argv:
            raise
        message = " ".join(str(exc).split())
        print(
            f"remora: the database does not answer ({message}); check DATABASE_URL and that "
            "the database server runs.",
            file=sys.stderr,
        )
        sys.exit(DATABASE_UNREACHABLE)


if __name__ == "__main__":
    sys.argv[0] = "python -m remora_admin"  # how Django's help names the program
    main()
