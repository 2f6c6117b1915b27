"""A configuration error is one line naming the variable, never a traceback; a command that
refuses says why in one line; a refused request is logged in one line."""

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from tests.access.helpers import make_user, sign_in

BASE_DIR = Path(__file__).resolve().parent.parent
GOOD_SECRET = "s" * 64


@pytest.fixture(autouse=True)
def scratch(tmp_path, monkeypatch):
    """Commands get a SQLite database of their own in a scratch directory (system checks open
    the database; no test here should reach the shared MariaDB or the checkout's var/)."""
    monkeypatch.setenv("REMORA_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'remora.sqlite3'}")


def _manage(*args: str, **env: str | None) -> subprocess.CompletedProcess:
    """Run manage.py with the venv's Python and the real settings (not the tests'), in an
    environment without DEBUG/SECRET_KEY/LOG_LEVEL unless given; None removes a variable."""
    unset = {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "LOG_LEVEL"}
    environ = {k: v for k, v in os.environ.items() if k not in unset}
    environ["DJANGO_SETTINGS_MODULE"] = "remora_admin.settings"
    environ["PYTHONWARNINGS"] = "ignore"
    for name, value in env.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        cwd=BASE_DIR,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line_naming(result: subprocess.CompletedProcess, variable: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr + result.stdout
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    return lines[0]


BAD_ENVIRONMENTS = [
    pytest.param({}, "SECRET_KEY", id="no-debug-no-secret-key"),
    pytest.param({"SECRET_KEY": "short", "ALLOWED_HOSTS": "x"}, "SECRET_KEY", id="short-key"),
    pytest.param({"SECRET_KEY": GOOD_SECRET}, "ALLOWED_HOSTS", id="no-allowed-hosts"),
    pytest.param({"DEBUG": "maybe"}, "DEBUG", id="debug-maybe"),
    pytest.param({"DEBUG": "true", "REMORA_SESSION_IDLE_MINUTES": "abc"}, "IDLE_MINUTES", id="abc"),
    pytest.param({"DEBUG": "true", "REMORA_SUDO_MINUTES": "0"}, "REMORA_SUDO_MINUTES", id="zero"),
    pytest.param({"DEBUG": "true", "DATABASE_URL": "postgres://x/y"}, "DATABASE_URL", id="db"),
    pytest.param({"DEBUG": "true", "REDIS_URL": "http://x"}, "REDIS_URL", id="redis"),
    pytest.param({"DEBUG": "true", "LOG_LEVEL": "loud"}, "LOG_LEVEL", id="log-level"),
]


@pytest.mark.parametrize("command", [["check"], ["demo_code", "bob"]], ids=" ".join)
@pytest.mark.parametrize(("env", "variable"), BAD_ENVIRONMENTS)
def test_a_configuration_error_is_one_line_naming_the_variable(command, env, variable):
    result = _manage(*command, **env)

    assert result.returncode == 2
    line = _one_line_naming(result, variable)
    assert line.startswith("remora: configuration error: ")


def test_what_make_run_runs_reports_a_configuration_error_the_same_way():
    """`make run` is `manage.py devstack` with DEBUG=true; its children are manage.py too."""
    result = _manage("devstack", DEBUG="true", REMORA_SESSION_IDLE_MINUTES="abc")

    assert result.returncode == 2
    _one_line_naming(result, "REMORA_SESSION_IDLE_MINUTES")


def test_a_database_that_does_not_answer_is_one_line_naming_database_url():
    result = _manage(
        "migrate", "--check", DEBUG="true", DATABASE_URL="mysql://root:wrong@127.0.0.1:3306/nowhere"
    )

    assert result.returncode == 3
    line = _one_line_naming(result, "DATABASE_URL")
    assert line.startswith("remora: the database does not answer")


def test_traceback_on_request_shows_the_traceback():
    result = _manage("check", "--traceback", DEBUG="true", REMORA_SESSION_IDLE_MINUTES="abc")

    assert result.returncode != 0
    assert "Traceback" in result.stderr and "REMORA_SESSION_IDLE_MINUTES" in result.stderr


def test_demo_code_refuses_in_one_line_without_debug():
    """Settings fine for production, but a printed second factor is no factor."""
    result = _manage("demo_code", "bob", SECRET_KEY=GOOD_SECRET, ALLOWED_HOSTS="admin.example.org")

    assert result.returncode == 1
    line = _one_line_naming(result, "DEBUG")
    assert line.startswith("CommandError: ")
    assert "make code USER=bob" in line


def test_load_demo_users_refuses_in_one_line_without_debug():
    result = _manage("load_demo_users", SECRET_KEY=GOOD_SECRET, ALLOWED_HOSTS="admin.example.org")

    assert result.returncode == 1
    assert _one_line_naming(result, "DEBUG").startswith("CommandError: ")


def test_the_banner_and_the_readme_give_the_make_code_command():
    from remora_admin.access.management.commands.load_demo_users import login_lines

    bob = next(line for line in login_lines() if line.startswith("bob "))
    assert "make code USER=bob" in bob
    readme = (BASE_DIR / "README.md").read_text()
    assert "make code USER=" in readme
    assert "python manage.py demo_code" not in readme + "\n".join(login_lines())
    makefile = (BASE_DIR / "Makefile").read_text()
    assert "DEBUG=true $(PY) manage.py demo_code" in makefile


# --- A refused request in the log -------------------------------------------------------------


@pytest.fixture
def console_output():
    """What the configured console handler (the one `make run` prints through) writes."""
    handler = next(h for h in logging.getLogger("django").handlers if h.name == "console")
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)


@pytest.mark.django_db
def test_a_403_is_logged_in_one_line_without_a_traceback(topology, console_output):
    nobody = make_user("zed")  # signed in, no grant: the audit log is refused with a reason
    records: list[logging.LogRecord] = []
    capture = logging.Handler()
    capture.emit = records.append
    logging.getLogger("django.request").addHandler(capture)
    try:
        response = sign_in(nobody).get(reverse("audit:list"))
    finally:
        logging.getLogger("django.request").removeHandler(capture)

    assert response.status_code == 403
    written = console_output.getvalue()
    lines = [line for line in written.splitlines() if "Forbidden" in line]
    assert len(lines) == 1, written
    assert "Traceback" not in written
    assert "WARNING django.request: Forbidden (Permission denied): /audit/" in lines[0]
    # The original record keeps its exception for any handler that wants it.
    assert records and records[0].exc_info is not None


def test_make_help_lists_what_make_run_starts_and_make_code():
    """`make help` once said "web + worker"; devstack also runs the ticker and a Redis."""
    makefile = (BASE_DIR / "Makefile").read_text()
    help_text = makefile.split("\nhelp:\n", 1)[1].split("\n\n", 1)[0].lower()
    for part in ("web", "rq worker", "ticker", "redis-server", "fakeredis", "make code user="):
        assert part in help_text, part
    assert "web + worker" not in help_text
