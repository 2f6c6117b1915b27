"""The production install in deploy/ holds together: with the settings the environment template
documents (filled in as install.sh fills them), `manage.py check --deploy` finds nothing, not
even a warning; every key of the template is read by the settings (or gunicorn's config), and
every variable the settings read is in the template; the units run commands that exist, with
the files install.sh puts where they look. The lab test (tests/lab/test_install.py) installs the
bundle on a real Debian 12 host."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
TEMPLATE = DEPLOY / "remora.env.example"
UNITS = ("remora-web.service", "remora-worker@.service", "remora-ticker.service")
# Read by the settings but not for a server: where `make lab` leaves its state (development).
NOT_FOR_SERVERS = {"REMORA_LAB_STATE_FILE"}
# Read by deploy/gunicorn.conf.py, not by the settings.
GUNICORN_KEYS = {"REMORA_WEB_BIND", "WEB_CONCURRENCY", "REMORA_WEB_THREADS"}


def template() -> dict[str, str]:
    """The template's KEY=value lines, in systemd's EnvironmentFile format."""
    values = {}
    for line in TEMPLATE.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"not KEY=value: {line!r}"
        assert key not in values, f"{key} twice"
        assert not value.startswith(("'", '"')) and value == value.strip(), line
        values[key] = value
    return values


def filled(tmp_path: Path) -> dict[str, str]:
    """The template as install.sh fills it (new secrets, this machine's test services)."""
    values = template()
    values.update(
        SECRET_KEY="k" * 20 + Fernet.generate_key().decode()[:44],
        REMORA_CREDENTIALS_KEY=Fernet.generate_key().decode(),
        DATABASE_URL=os.environ.get("DATABASE_URL", "mysql://root:@127.0.0.1:3306/remora"),
        REDIS_URL=os.environ["REDIS_URL"],
        REMORA_VAR_DIR=str(tmp_path),
        STATIC_ROOT=str(tmp_path / "static"),
        REMORA_AUDIT_SINK=f"file:{tmp_path / 'audit-sink.jsonl'}",
        REMORA_AUDIT_ARCHIVE_DIR=str(tmp_path / "audit-archives"),
    )
    return values


def production_env(values: dict[str, str]) -> dict[str, str]:
    """Only what a unit's process sees: the environment file, plus PATH and the like."""
    keep = {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    return {**env, **values, "DJANGO_SETTINGS_MODULE": "remora_admin.settings"}


def test_check_deploy_is_clean_with_the_documented_settings(tmp_path, db):
    from django.db import connection

    # MariaDB, as on a server: the test database (the checks open it).
    server = urlsplit(os.environ.get("DATABASE_URL", "mysql://root:@127.0.0.1:3306/remora"))
    database = server._replace(path=f"/{connection.settings_dict['NAME']}").geturl()
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env({**filled(tmp_path), "DATABASE_URL": database}),
        capture_output=True,
        text=True,
        timeout=120,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in result.stdout, output
    assert "WARNING" not in output and "?:" not in output, output


# Runs in a fresh interpreter: records every environment variable the settings module (and,
# separately, gunicorn's configuration) asks for.
RECORDER = """
import importlib, json, os, runpy, sys

import dj_database_url, django.core.exceptions, django.utils.csp  # their own reads don't count
import remora_admin


class Recorder(dict):
    def __init__(self, data):
        super().__init__(data)
        self.asked = set()

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.asked.add(key)
        return super().__contains__(key)


seen = {}
for name, load in (
    ("settings", lambda: importlib.import_module("remora_admin.settings")),
    ("gunicorn", lambda: runpy.run_path(sys.argv[1])),
):
    os.environ = Recorder(os.environ)
    load()
    seen[name] = sorted(os.environ.asked)
print(json.dumps(seen))
"""


def test_every_key_of_the_template_is_read_and_every_setting_is_in_it(tmp_path):
    values = filled(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", RECORDER, str(DEPLOY / "gunicorn.conf.py")],
        cwd=ROOT,
        env=production_env(values),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    by_settings, by_gunicorn = set(seen["settings"]), set(seen["gunicorn"])

    not_read = set(values) - by_settings - GUNICORN_KEYS
    assert not not_read, f"in the template, read by nothing: {sorted(not_read)}"
    assert by_gunicorn == GUNICORN_KEYS
    missing = by_settings - set(values) - NOT_FOR_SERVERS - {"DJANGO_SETTINGS_MODULE"}
    assert not missing, f"read by the settings, missing from the template: {sorted(missing)}"


def unit(name: str) -> dict[str, list[str]]:
    """A unit file's settings, each key with its values in order (sections flattened)."""
    settings: dict[str, list[str]] = {}
    for line in (DEPLOY / name).read_text().splitlines():
        if not line or line.startswith(("#", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key, []).append(value)
    return settings


def install_sh_variable(name: str) -> str:
    """A variable install.sh sets at its top (FOO=/path or FOO=$BAR/path), resolved."""
    text = (DEPLOY / "install.sh").read_text()
    variables = dict(re.findall(r"^([A-Z_]+)=([^\s(]+)$", text, re.M))
    value = variables[name]
    while "$" in value:
        value = re.sub(r"\$(\w+)", lambda m: variables[m.group(1)], value)
    return value


def installed_as(source: str) -> str:
    """Where install.sh puts a file of the bundle's deploy/ folder."""
    text = (DEPLOY / "install.sh").read_text()
    pattern = rf'^ *install -m 0[0-7]+ "\$bundle/deploy/{re.escape(source)}" "?([^"\s]+)"?$'
    match = re.search(pattern, text, re.M)
    assert match, f"install.sh does not install {source}"
    return re.sub(r"\$(\w+)", lambda m: install_sh_variable(m.group(1)), match.group(1))


def test_the_units_run_commands_that_exist_with_the_files_install_sh_puts_there():
    from django.core.management import get_commands

    commands = get_commands()
    gunicorn_conf = installed_as("gunicorn.conf.py")
    env_file = install_sh_variable("ENV_FILE")
    var_dir = template()["REMORA_VAR_DIR"]
    assert var_dir == install_sh_variable("VAR")
    for name in UNITS:
        settings = unit(name)
        assert settings["User"] == ["remora"] and settings["Group"] == ["remora"], name
        assert settings["EnvironmentFile"] == [env_file], name
        assert settings["WorkingDirectory"] == [var_dir], name
        for key, value in {
            "NoNewPrivileges": "yes",
            "ProtectSystem": "strict",
            "ReadWritePaths": var_dir,
            "PrivateTmp": "yes",
            "Restart": "on-failure",
        }.items():
            assert settings.get(key) == [value], f"{name}: {key}"
        for environment in settings.get("Environment", []):
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*=\S+", environment), f"{name}: {environment}"
        (exec_start,) = settings["ExecStart"]
        program, *args = exec_start.split()
        assert program.startswith(install_sh_variable("PREFIX") + "/venv/bin/"), name
        if program.endswith("/python"):
            assert args[:2] == ["-m", "remora_admin"], name
            assert (ROOT / "remora_admin/__main__.py").exists()
            assert args[2] in commands, f"{name}: no manage.py command {args[2]}"
        else:
            assert program.endswith("/gunicorn"), name
            assert args[:2] == ["--config", gunicorn_conf], name
            module, _, attribute = args[2].partition(":")
            assert module == "remora_admin.wsgi" and attribute == "application"
            assert (ROOT / "remora_admin/wsgi.py").exists()
    assert installed_as("remora-admin.sh") == "/usr/local/bin/remora-admin"
    wrapper = (DEPLOY / "remora-admin.sh").read_text()
    assert f"ENV_FILE={env_file}" in wrapper and f"cd {var_dir}" in wrapper


def test_the_units_are_the_ones_the_bundle_carries_and_install_sh_installs():
    installer = (DEPLOY / "install.sh").read_text()
    shipped = sorted(p.name for p in DEPLOY.glob("*.service"))
    listed = re.search(r"^UNITS=\((.*)\)$", installer, re.M).group(1).split()

    assert shipped == sorted(UNITS) == sorted(listed)
    assert 'install -m 0644 "$bundle/deploy/$unit" "/etc/systemd/system/$unit"' in installer


@pytest.mark.parametrize(
    ("env", "bind", "workers"),
    [
        ({}, ["127.0.0.1:8000"], None),
        (
            {"REMORA_WEB_BIND": "unix:/run/remora/web.sock", "WEB_CONCURRENCY": "4"},
            ["unix:/run/remora/web.sock"],
            4,
        ),
    ],  # fmt: skip
)
def test_gunicorn_listens_where_the_environment_says(env, bind, workers, monkeypatch):
    import runpy

    for key in GUNICORN_KEYS:
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))

    assert config["bind"] == bind
    assert config["workers"] == (workers or min(2 * (os.cpu_count() or 1) + 1, 8))
    # Threaded workers: a follower's long poll holds a thread, not a whole worker.
    assert config["worker_class"] == "gthread" and config["threads"] >= 4


# Bad arguments end install.sh before it changes anything, with the reason in words. It runs as
# `nobody` (told it is root by an `id` of ours), and apt-get, systemctl and useradd of ours
# write down any call: should a check let bad input through, nothing could change here.
BAD_ARGUMENTS = [
    (["--allow-workers-from", "10.0.0.1/24"], "must be an IPv4 network like 10.0.0.0/24"),
    (["--allow-workers-from", "10.0.0.0/33"], "must be an IPv4 network like 10.0.0.0/24"),
    (["--allow-workers-from", "10.0.0.0"], "must be an IPv4 network like 10.0.0.0/24"),
    (["--allow-workers-from", "0.0.0.0/0"], "of at most a /8"),
    (["--allow-workers-from", "UNUSED"], "no address of this machine is in UNUSED"),
    (["--worker-only"], "--worker-only needs --env-file FILE on the first install"),
    (["--worker-only", "--allow-workers-from", "10.0.0.0/24"], "is for the console's machine"),
    (["--env-file", "/etc/hostname"], "--env-file goes with --worker-only"),
    (["--worker-only", "--env-file", "/etc/hostname"], "has no DATABASE_URL or REDIS_URL"),
    (["--worker-only", "--env-file", "/no/such/file"], "--env-file: cannot read"),
    (["--workers", "0"], "--workers must be a number from 1 to 99"),
    (["--set", "NO_SUCH_KEY=1"], "no such setting in remora.env.example"),
    (["--frobnicate"], "unknown argument: --frobnicate"),
]


def _a_network_this_machine_is_not_in() -> str:
    import ipaddress

    out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True)
    mine = [ipaddress.ip_interface(line.split()[3]).ip for line in out.stdout.splitlines()]
    for candidate in ("198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24"):  # documentation's
        if not any(a in ipaddress.ip_network(candidate) for a in mine):
            return candidate
    raise AssertionError(f"this machine has an address in every documentation network: {mine}")


@pytest.fixture(scope="module")
def fake_bundle():
    """A bundle's shape (deploy/, a python, a wheelhouse) that `nobody` can read, and a PATH
    whose id says 0 and whose apt-get, systemctl and useradd only write down that they ran."""
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="remora-install-args-"))
    top.chmod(0o755)
    bundle = top / "bundle"
    shutil.copytree(DEPLOY, bundle / "deploy")
    (bundle / "wheelhouse").mkdir()
    (bundle / "python/bin").mkdir(parents=True)
    (bundle / "python/bin/python3").symlink_to("/usr/bin/python3")
    fake = top / "bin"
    fake.mkdir()
    calls = top / "calls"
    calls.write_text("")
    calls.chmod(0o666)
    (fake / "id").write_text("#!/bin/sh\necho 0\n")
    for name in ("apt-get", "systemctl", "useradd", "install", "mariadb"):
        (fake / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\n')
    for script in fake.iterdir():
        script.chmod(0o755)
    for path in bundle.rglob("*"):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() or path.suffix == ".sh" else 0o644)
    yield bundle, fake, calls
    shutil.rmtree(top)


@pytest.mark.parametrize(("arguments", "said"), BAD_ARGUMENTS)
def test_install_sh_refuses_bad_arguments_in_words_before_changing_anything(
    fake_bundle, arguments, said
):
    bundle, fake, calls = fake_bundle
    calls.write_text("")
    unused = _a_network_this_machine_is_not_in()
    arguments = [unused if a == "UNUSED" else a for a in arguments]
    said = said.replace("UNUSED", unused)
    result = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
         str(bundle / "deploy/install.sh"), *arguments],
        env={"PATH": f"{fake}:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert result.returncode == 1, result.stdout + result.stderr
    assert said in result.stderr, result.stderr
    assert result.stderr.startswith("install: "), result.stderr
    assert result.stdout == ""
    assert calls.read_text() == ""
