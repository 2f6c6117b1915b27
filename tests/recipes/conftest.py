"""Running recipes through the console's own path on the lab's hosts.

`run_recipe("mariadb_master", "beamrider", {...})` launches as the lead admin (verified second
factor), approves as a second superadmin when the zone wants approval, executes the run in this
process (the worker's own `execute_run`) and returns the finished run; `output(run)` is its
output. `status_of(...)` runs a recipe's status companion over SSH and returns (exit code,
output). Each test module gets freshly installed hosts (`fresh_lab`); the inventory points at
them.
"""

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from hosts.models import Host
from jobs import launch as launching
from jobs import ssh
from jobs.recipes import get, render_status
from jobs.tasks import execute_run
from lab import control
from remora_admin import lab_demo
from tests.access.helpers import authenticator

PROBE = Path(__file__).resolve().parents[2] / "stack_probe"
GIT_LAB_PORT = 9418


@pytest.fixture
def lab_inventory(fresh_lab, topology, django_user_model):
    lead = django_user_model.objects.create_superuser("bernie", "b@example.org", "pw-lead-1")
    second = django_user_model.objects.create_superuser("alice-admin", "a@example.org", "pw-2")
    for user in (lead, second):
        authenticator(user)
    lab_demo.adopt(fresh_lab, actor=lead)
    return {"lead": lead, "second": second, "state": fresh_lab}


@pytest.fixture
def run_recipe(lab_inventory):
    def run(name: str, host: str, params: dict | None = None):
        recipe = get(name)
        assert recipe is not None, f"no recipe {name}"
        form = recipe.form(params or {}, host=Host.objects.get(name=host))
        assert form.is_valid(), form.errors
        target = Host.objects.get(name=host)
        [launched] = launching.launch(
            lab_inventory["lead"], recipe, [target], form.cleaned_data, second_factor=True
        )
        if launched.state == "awaiting_approval":
            launching.approve(lab_inventory["second"], launched, "test", second_factor=True)
        execute_run(launched.pk)
        launched.refresh_from_db()
        return launched

    return run


def output(run) -> str:
    return b"".join(bytes(c.data) for c in run.chunks.order_by("offset")).decode()


@pytest.fixture
def status_of(lab_inventory):
    def status(name: str, host: str, params: dict | None = None) -> tuple[int | None, str]:
        recipe = get(name)
        target = Host.objects.get(name=host)
        form = recipe.form(params or {}, host=target)
        assert form.is_valid(), form.errors
        script = render_status(recipe, form.cleaned_data)
        assert script, f"{name} has no status companion"
        key = Path(lab_inventory["state"]["private_key_path"]).read_text()
        client, _ = ssh.borrow(
            ssh.Target(
                target.address,
                target.ssh_port,
                target.ssh_user,
                target.host_key,
                key,
                target.credential.key_type,
            )  # fmt: skip
        )
        out = bytearray()
        try:
            outcome = ssh.run_script(
                client,
                script,
                timeout=120,
                on_output=lambda s, d: out.extend(d),
                should_cancel=lambda: False,
                as_root=recipe.as_root,  # fmt: skip
            )
        finally:
            client.close()
        return outcome.exit_code, out.decode()

    return status


def git(*args: str, cwd: Path) -> str:
    identity = ["-c", "user.name=Remora Tests", "-c", "user.email=tests@remora.invalid"]
    return subprocess.run(
        ["git", *identity, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def probe_repo(fresh_lab, tmp_path):
    """The stack probe as a git repository (branch main), served by `git daemon` on the
    machine's loopback and relayed to the lab's bridge address: the hosts clone it from
    git://<bridge>:9418/probe.git and reach nothing else of the machine."""
    work, served = tmp_path / "work", tmp_path / "served"
    shutil.copytree(PROBE, work)
    git("init", "-q", "-b", "main", cwd=work)
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "The stack probe", cwd=work)
    served.mkdir()
    git("clone", "-q", "--bare", str(work), str(served / "probe.git"), cwd=tmp_path)
    git("remote", "add", "served", str(served / "probe.git"), cwd=work)
    port = free_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--export-all", "--reuseaddr", f"--base-path={served}",
         "--listen=127.0.0.1", f"--port={port}", str(served)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_listening(port)
        address = control.offer("git", GIT_LAB_PORT, port)
        yield {"url": f"git://{address}/probe.git", "work": work}
    finally:
        control.withdraw("git")
        daemon.terminate()
        daemon.wait(10)


def _wait_listening(port: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"git daemon did not listen on {port}")
