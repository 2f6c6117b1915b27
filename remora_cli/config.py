"""Where the CLI keeps the console's URL and the personal token: one JSON file, readable by its
owner only (the directory 0700, the file 0600, written whole and renamed into place).

REMORA_URL and REMORA_TOKEN override the file (for scripts and CI); --url/--token override
both.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "config.json"


class ConfigError(Exception):
    """The config file cannot be read or written; the message says why."""


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "remora"


def config_path() -> Path:
    return config_dir() / FILE_NAME


def load() -> dict:
    path = config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigError(f"{path} is not valid JSON: fix it or run `remora login` again") from None
    return data if isinstance(data, dict) else {}


def save(url: str, token: str) -> Path:
    """Write {url, token}, never readable by anyone else, even for an instant."""
    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(directory, 0o700)
    path = directory / FILE_NAME
    temporary = directory / f".{FILE_NAME}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump({"url": url, "token": token}, file, indent=2)
            file.write("\n")
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    return path


def forget() -> bool:
    """Remove the file; whether there was one."""
    try:
        config_path().unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ConfigError(f"cannot remove {config_path()}: {exc.strerror}") from None
    return True


@dataclass
class Settings:
    url: str | None
    token: str | None
    url_from: str  # where the URL came from: "option", "REMORA_URL", the file's path, ""
    token_from: str


def resolve(url_option: str | None = None, token_option: str | None = None) -> Settings:
    """The URL and token to use: the options, else the environment, else the file."""
    stored: dict | None = None

    def from_file(key: str) -> str | None:
        nonlocal stored
        if stored is None:
            stored = load()
        value = stored.get(key)
        return value if isinstance(value, str) and value else None

    def pick(option: str | None, variable: str, key: str) -> tuple[str | None, str]:
        if option:
            return option, "option"
        if os.environ.get(variable):
            return os.environ[variable], variable
        value = from_file(key)
        return value, (str(config_path()) if value else "")

    url, url_from = pick(url_option, "REMORA_URL", "url")
    token, token_from = pick(token_option, "REMORA_TOKEN", "token")
    return Settings(url=url, token=token, url_from=url_from, token_from=token_from)
