"""The `remora` CLI against a live console: pytest-django's `live_server` (the real URL
routing, API and policy, serving the test database in a thread), a real RQ worker process on
the test database and Redis, and the sunjammer host of the seed topology pointed at the real
loopback sshd. The CLI itself runs as a subprocess (the installed `remora` script) with its
HOME and XDG_CONFIG_HOME in a scratch folder: it only ever talks HTTP."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from hosts.credentials import encrypt, fingerprint, parse_private_key
from hosts.models import Credential, Host
from remora_admin.access import tokens
from tests.access.conftest import alice, bernie, carol, dan, erin, ivan  # noqa: F401 (fixtures)
from tests.jobs.conftest import make_recipe  # noqa: F401 (a fixture)
from tests.jobs.worker_process import start_worker, stop, wait_listening

REMORA = Path(sys.executable).with_name("remora")


@pytest.fixture(autouse=True)
def _installed():
    assert REMORA.exists(), f"{REMORA} is missing: run `.venv/bin/pip install -e . --no-deps`"


@pytest.fixture
def console(live_server) -> str:
    return live_server.url


@pytest.fixture
def worker(redis_conn, transactional_db):
    process = start_worker()
    wait_listening(process, redis_conn)
    yield process
    stop(process)


@pytest.fixture
def sunjammer(topology, sshd_host, ssh_keys) -> Host:
    """The seed's sunjammer (a standard zone), reachable: the loopback sshd, a key of its zone,
    its host key pinned."""
    host = Host.objects.select_related("zone").get(name="sunjammer")
    private, kind, public = parse_private_key(ssh_keys.client_key_path.read_text())
    credential = Credential.objects.create(
        name="sunjammer-key",
        zone=host.zone,
        key_type=kind,
        public_key=public,
        fingerprint=fingerprint(public),
        encrypted_private_key=encrypt(private),
    )
    Host.objects.filter(pk=host.pk).update(
        address=sshd_host.address,
        ssh_port=sshd_host.port,
        ssh_user=sshd_host.user,
        credential=credential,
        host_key=sshd_host.host_public_key,
        host_key_fingerprint=fingerprint(sshd_host.host_public_key),
        host_key_trusted_at=timezone.now(),
    )
    host.refresh_from_db()
    return host


def token_for(user, scope: str = "act", lifetime: timedelta = timedelta(days=1)) -> str:
    _, raw = tokens.create(user, name=f"{user.username} CLI", scope=scope, lifetime=lifetime)
    return raw


@pytest.fixture
def home(tmp_path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def cli_env(home, console):
    """`cli_env(token=...)`: the environment of a CLI process: its own HOME and config folder,
    the live console's URL, and the token if one is given."""

    def make(token: str | None = None, url: str | None = None, **extra) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REMORA_")}
        env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), LC_ALL="C.UTF-8")
        env["REMORA_URL"] = url if url is not None else console
        if token:
            env["REMORA_TOKEN"] = token
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}

    return make


@pytest.fixture
def remora(cli_env, home):
    """`remora(*args, token=..., input=...)`: run the CLI to its end; a CompletedProcess with
    text stdout and stderr."""

    def run(*args: str, token: str | None = None, input: str | None = None, url=None, **extra):
        return subprocess.run(
            [str(REMORA), *args],
            env=cli_env(token, url, **extra),
            cwd=home,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    return run


@pytest.fixture
def start_remora(cli_env, home):
    """`start_remora(*args, token=...)`: the CLI as a running process (stdout and stderr piped,
    bytes), for reading its output while it runs."""
    started: list[subprocess.Popen] = []

    def start(*args: str, token: str | None = None) -> subprocess.Popen:
        process = subprocess.Popen(
            [str(REMORA), *args],
            env=cli_env(token),
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
