"""Paths that recipes create, export or mount: validated once, the same way everywhere."""

import re

from django.core.exceptions import ValidationError


def absolute_path(value: str) -> None:
    if not value.startswith("/"):
        raise ValidationError(f"{value!r} is not an absolute path (it must start with /).")
    if not re.fullmatch(r"(/[A-Za-z0-9._-]+)+", value) or "/../" in f"{value}/":
        raise ValidationError(
            "Use a plain absolute path: letters, digits and . _ - between slashes, no .."
        )
    if "/./" in f"{value}/" or value == "/":
        raise ValidationError("Use a plain absolute path, without . or the root itself.")


# Directories a recipe must never create or hand to www-data (nor their parents).
SYSTEM_DIRS = (
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/root", "/run",
    "/sbin", "/sys", "/tmp", "/usr", "/var/cache", "/var/lib", "/var/log", "/var/tmp",  # noqa: S108
)  # fmt: skip
OWN_DIR = "choose a directory of the application's own, such as /srv/remora/files."


def within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(f"{directory}/")


def system_path(path: str) -> bool:
    """A system directory, anything inside one, or a top-level directory such as /srv."""
    return path.count("/") < 2 or any(within(path, d) or within(d, path) for d in SYSTEM_DIRS)
