"""Running recipes through the console's own path on the lab's hosts.

`run_recipe("mariadb_master", "beamrider", {...})` launches as the lead admin (verified second
factor), approves as a second superadmin when the zone wants approval, executes the run in this
process (the worker's own `execute_run`) and returns the finished run; `output(run)` is its
output. `status_of(...)` runs a recipe's status companion over SSH and returns (exit code,
output). Each test module gets freshly installed hosts (`fresh_lab`); the inventory points at
them.
"""

from pathlib import Path

import pytest

from hosts.models import Host
from jobs import launch as launching
from jobs import ssh
from jobs.recipes import get, render_status
from jobs.tasks import execute_run
from remora_admin import lab_demo
from tests.access.helpers import authenticator


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
