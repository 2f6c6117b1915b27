"""The lab's hosts behave like freshly installed Debian 12 servers: systemd running with no
failed unit, sshd reached with a pinned key by the console's own SSH code, apt that installs,
starts and enables a service that survives a reboot, names that resolve between hosts, and no
way out of the lab but the mirror relay."""

import time
from pathlib import Path

import pytest

from jobs import ssh
from lab import base, control, host
from lab.config import BY_NAME, HOSTS

pytestmark = pytest.mark.lab


def _target(state: dict, name: str, *, host_key: str | None = None) -> ssh.Target:
    entry = next(h for h in state["hosts"] if h["name"] == name)
    return ssh.Target(
        address=entry["ssh_address"],
        port=entry["ssh_port"],
        user=entry["ssh_user"],
        host_key=host_key or entry["host_key"],
        private_key=Path(state["private_key_path"]).read_text(),
        key_type="ssh-ed25519",
    )


def _run(target: ssh.Target, script: str, timeout: int = 60) -> tuple[int | None, str]:
    out = bytearray()
    client, _ = ssh.borrow(target)
    try:
        outcome = ssh.run_script(
            client,
            script,
            timeout=timeout,
            on_output=lambda stream, data: out.extend(data),
            should_cancel=lambda: False,
        )
    finally:
        client.close()
    return outcome.exit_code, out.decode(errors="replace")


def test_every_host_boots_to_running_with_no_failed_unit(fresh_lab, capsys):
    for h in HOSTS:
        assert host.state(h) == "running", h.name
        failed = control.run(h, "systemctl --failed --no-legend --plain").stdout
        assert failed.strip() == "", f"{h.name}: {failed}"
        assert control.run(h, "cat /proc/1/comm").stdout.strip() == "systemd"
    with capsys.disabled():
        boot = fresh_lab["timings"].get("boot_s") or {}
        print(f"\nlab: session start {fresh_lab['timings']['session_s']:.1f} s; boot per host "
              + ", ".join(f"{n} {s:.2f} s" for n, s in boot.items()))  # fmt: skip


def test_the_console_signs_in_as_deploy_with_the_pinned_key_and_may_sudo(fresh_lab):
    code, output = _run(_target(fresh_lab, "sunjammer"), "hostname; id -un; sudo -n id -un")

    assert code == 0
    assert output.split() == ["sunjammer", "deploy", "root"]


def test_an_unknown_host_key_is_refused(fresh_lab):
    other = next(h["host_key"] for h in fresh_lab["hosts"] if h["name"] == "beamrider")

    with pytest.raises(ssh.SSHFailure) as failure:
        ssh.borrow(_target(fresh_lab, "sunjammer", host_key=other))

    assert failure.value.kind == "host_key_mismatch"


def test_each_host_has_a_key_of_its_own(fresh_lab):
    keys = [h["host_key"] for h in fresh_lab["hosts"]]

    assert len(set(keys)) == len(keys)
    seen = ssh.scan_host_key(fresh_lab["hosts"][0]["ssh_address"], 22)
    assert seen == fresh_lab["hosts"][0]["host_key"]


def test_hosts_reach_each_other_by_name_and_nothing_outside(fresh_lab):
    sunjammer = BY_NAME["sunjammer"]

    ping = control.run(sunjammer, "ping -c1 -W2 beamrider && ping -c1 -W2 remora2")
    routes = control.run(sunjammer, "ip route").stdout
    _, mirror_host = base.mirror()
    direct = control.run(sunjammer, f"curl -sS -m 5 -o /dev/null http://{mirror_host}/ 2>&1")
    outside = control.run(sunjammer, "ping -c1 -W2 1.1.1.1")

    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "default" not in routes
    assert direct.returncode != 0, "a host reached the mirror without the relay"
    assert outside.returncode != 0


def test_apt_installs_starts_and_enables_a_service_that_survives_a_reboot(fresh_lab):
    remora2 = BY_NAME["remora2"]
    install = control.run(
        remora2,
        "apt-get update -q >/dev/null && "
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light >/dev/null && "
        "systemctl is-active nginx && systemctl is-enabled nginx",
        timeout=600,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert install.stdout.split() == ["active", "enabled"]
    archive = base.archives()
    assert list(archive.glob("nginx*.deb")), "downloaded packages are kept in the shared cache"

    host.stop(remora2)
    assert host.state(remora2) == "stopped"
    host.start(remora2, base.base_dir(), archive)
    host.wait_running(remora2)
    control.write_state()

    assert control.run(remora2, "systemctl is-active nginx").stdout.strip() == "active"
    page = control.run(remora2, "curl -s -o /dev/null -w '%{http_code}' http://localhost/")
    assert page.stdout == "200"


def test_a_second_build_reuses_the_cached_base_and_packages(fresh_lab, capsys):
    started = time.monotonic()
    path, built = base.build()
    again = time.monotonic() - started

    assert built is None and (path / ".complete").exists()
    assert any(base.archives().glob("*.deb"))
    first = fresh_lab["timings"].get("build_s")
    with capsys.disabled():
        print(
            "\nlab base: "
            + (f"built in this session in {first:.1f} s; " if first else "cached before; ")
            + f"second build {again * 1000:.0f} ms (cached)"
        )
    assert again < 5
