"""SSH is strict and its failures are told in words: wrong key, changed or unknown host key,
unreachable host, a connection lost mid-run."""

import threading
import time

import pytest
from django.db import connections

from hosts.credentials import encrypt, fingerprint, generate_ed25519, parse_private_key
from hosts.models import Credential, Host
from jobs import launch as launching
from jobs import ssh
from jobs.models import RunState
from jobs.tasks import execute_run
from remora_admin.audit.models import AuditEvent

from .conftest import host_for

pytestmark = pytest.mark.django_db(transaction=True)


def _quick(make_recipe):
    return make_recipe("say_hi", lambda p: "echo hi")


def test_a_key_the_host_does_not_accept_fails_with_authentication_failed(
    sshd_host, zone, carol, make_recipe, run_now
):
    private, kind, public = parse_private_key(generate_ed25519())
    stranger = Credential.objects.create(
        name="stranger",
        zone=zone,
        key_type=kind,
        public_key=public,
        fingerprint=fingerprint(public),
        encrypted_private_key=encrypt(private),
    )
    host = host_for(sshd_host, zone, stranger, name="lab-wrong-key")

    [run] = run_now(carol, _quick(make_recipe), [host])

    assert run.state == RunState.FAILED
    assert run.error.startswith("authentication failed")


def test_a_changed_host_key_is_refused_and_flags_the_host(
    make_sshd, zone, credential, carol, make_recipe, run_now
):
    server = make_sshd()
    host = host_for(server, zone, credential, name="lab-swapped")
    recipe = _quick(make_recipe)
    [first] = run_now(carol, recipe, [host])
    assert first.state == RunState.SUCCEEDED, first.error

    new_key = server.swap_host_key()
    [second] = run_now(carol, recipe, [host])

    assert second.state == RunState.FAILED
    assert second.error == "host key changed: refusing to connect"
    host.refresh_from_db()
    assert host.host_key_alert.startswith("host key changed")
    assert host.seen_host_key_fingerprint == fingerprint(new_key)
    assert host.host_key_fingerprint == fingerprint(first.host.host_key)  # still the old pin
    alert = AuditEvent.objects.get(action="host.host_key_mismatch")
    assert alert.details["seen"] == fingerprint(new_key)
    assert alert.details["run"] == second.pk


def test_a_host_whose_key_is_not_trusted_is_refused_before_anything_runs(
    lab_host, carol, make_recipe, ssh_keys
):
    Host.objects.filter(pk=lab_host.pk).update(host_key="", host_key_fingerprint="")
    lab_host.refresh_from_db()

    with pytest.raises(launching.LaunchRefused, match="host key is not trusted yet"):
        launching.launch(carol, _quick(make_recipe), [lab_host], {})

    target = ssh.Target(
        lab_host.address,
        lab_host.ssh_port,
        lab_host.ssh_user,
        "",
        ssh_keys.client_key_path.read_text(),
        "ssh-ed25519",
    )
    with pytest.raises(ssh.SSHFailure) as failure:
        ssh.connect(target)
    assert failure.value.kind == "host_key_unknown"


def test_an_unreachable_host_fails_with_unreachable(
    sshd_host, zone, credential, carol, make_recipe, run_now
):
    host = host_for(sshd_host, zone, credential, name="lab-closed")
    Host.objects.filter(pk=host.pk).update(address="127.0.0.1", ssh_port=1)

    [run] = run_now(carol, _quick(make_recipe), [Host.objects.get(pk=host.pk)])

    assert run.state == RunState.FAILED
    assert run.error.startswith("unreachable")


def test_sshd_stopping_mid_run_fails_the_run_with_connection_lost(
    make_sshd, zone, credential, carol, make_recipe, tmp_path
):
    server = make_sshd()
    host = host_for(server, zone, credential, name="lab-dies")
    started = tmp_path / "started"
    recipe = make_recipe("long_wait", lambda p: f"touch {started}; sleep 60")
    [run] = launching.launch(carol, recipe, [host], {})

    def work():
        try:
            execute_run(run.pk)
        finally:
            connections.close_all()

    thread = threading.Thread(target=work)
    thread.start()
    deadline = time.monotonic() + 15
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    server.stop()
    thread.join(timeout=30)

    assert not thread.is_alive()
    run.refresh_from_db()
    assert run.state == RunState.FAILED
    assert run.error == "connection lost while the script was running"
