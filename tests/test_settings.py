"""Settings come from the environment; a bad value stops the process and names the variable.

Each case imports the settings in a fresh interpreter with a controlled environment, because
settings are read once per process.
"""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
READ_SETTINGS = (
    "import django; from django.conf import settings; "
    "print('DEBUG', settings.DEBUG); print('HSTS', settings.SECURE_HSTS_SECONDS); "
    "print('DB', settings.DATABASES['default']['ENGINE'])"
)


@pytest.fixture
def environment(tmp_path):
    """A minimal environment: nothing from the developer's shell leaks into the case."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "remora_admin.settings",
        "REMORA_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'remora.sqlite3'}",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@pytest.fixture
def production(environment):
    return {
        **environment,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(45),  # 60 characters
        "ALLOWED_HOSTS": "remora.example.org",
    }


def _python(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )


def _read_settings(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return _python(env, "-c", READ_SETTINGS)


def _refused(result: subprocess.CompletedProcess[str]) -> str:
    """The last line of the traceback, after checking the process stopped on a setting."""
    assert result.returncode != 0, result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured:"), result.stderr
    return last


def test_development_settings_load(environment):
    result = _read_settings({**environment, "DEBUG": "true"})

    assert result.returncode == 0, result.stderr
    assert "DEBUG True" in result.stdout
    assert "HSTS 0" in result.stdout
    assert "DB django.db.backends.sqlite3" in result.stdout


def test_a_debug_value_that_is_not_a_boolean_is_refused(environment):
    message = _refused(_read_settings({**environment, "DEBUG": "maybe"}))

    assert "DEBUG" in message
    assert "'maybe'" in message


def test_production_without_a_secret_key_is_refused(environment):
    message = _refused(_read_settings({**environment, "DEBUG": "false"}))

    assert "SECRET_KEY" in message


def test_production_with_a_short_secret_key_is_refused(production):
    message = _refused(_read_settings({**production, "SECRET_KEY": "x" * 20}))

    assert "SECRET_KEY" in message
    assert "50" in message


def test_production_without_allowed_hosts_is_refused(production):
    env = {k: v for k, v in production.items() if k != "ALLOWED_HOSTS"}

    message = _refused(_read_settings(env))

    assert "ALLOWED_HOSTS" in message


def test_a_postgres_database_url_is_refused(environment):
    env = {**environment, "DEBUG": "true", "DATABASE_URL": "postgres://remora@db.example.org/x"}

    message = _refused(_read_settings(env))

    assert "DATABASE_URL" in message


def test_a_redis_url_that_is_not_redis_is_refused(environment):
    message = _refused(_read_settings({**environment, "DEBUG": "true", "REDIS_URL": "http://x"}))

    assert "REDIS_URL" in message
    assert "'http://x'" in message


@pytest.mark.parametrize("value", ["abc", "-5"])
def test_a_bad_hsts_duration_is_refused(environment, value):
    env = {**environment, "DEBUG": "true", "SECURE_HSTS_SECONDS": value}

    message = _refused(_read_settings(env))

    assert "SECURE_HSTS_SECONDS" in message


def test_production_turns_on_hsts_for_a_year(production):
    result = _read_settings(production)

    assert result.returncode == 0, result.stderr
    assert "DEBUG False" in result.stdout
    assert "HSTS 31536000" in result.stdout


def test_the_production_profile_passes_the_deploy_checks(production):
    result = _python(production, "manage.py", "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_the_deploy_checks_catch_a_production_profile_without_https(production):
    env = {**production, "SECURE_SSL_REDIRECT": "false", "SECURE_HSTS_SECONDS": "0"}

    result = _python(env, "manage.py", "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode != 0
    assert "security.W004" in result.stderr
    assert "security.W008" in result.stderr
