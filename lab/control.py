"""Bringing the whole lab up and down, and saying what state it is in.

`up` is idempotent (a lab already up is left as it is) and first clears what a killed run left
behind; `down` removes everything the lab made on the machine (processes, namespaces, cgroups,
sockets) and is safe to run twice. The hosts' own layers and the cached base stay on disk, so
the next `up` is fast; `down --purge` forgets the hosts' layers too.
"""

import json
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import base, host, net
from .base import LabError
from .config import DEPLOY_USER, EXTRA_HOSTS, HOSTS, RUN, SSH_PORT, STATE, LabHost

STATE_FILE = RUN / "state.json"


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (namespaces, cgroups, mounts): run it as root")
    for tool in ("debootstrap", "socat", "unshare", "nsenter", "ip", "ssh-keygen"):
        if shutil.which(tool) is None:
            package = {"ip": "iproute2", "ssh-keygen": "openssh-client"}.get(tool, tool)
            if tool in ("unshare", "nsenter"):
                package = "util-linux"
            raise LabError(f"{tool} is not installed: apt-get install {package}")


def console_key() -> tuple[Path, str]:
    """The key pair the console signs in to the hosts with (the deploy account trusts it)."""
    private = STATE / "console_key"
    if not private.exists():
        STATE.mkdir(parents=True, exist_ok=True)
        net.sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "remora-lab-console",
               "-f", str(private))  # fmt: skip
    return private, Path(f"{private}.pub").read_text().strip()


def is_up() -> bool:
    return all(host.state(h) == "running" for h in HOSTS) and all(
        net.relay_alive(f"relay-ssh-{h.name}") for h in HOSTS
    )


def up(log=print) -> dict:
    """Build (cached) and boot every host; returns the timings."""
    require_root()
    if is_up():
        log("the lab is already up; nothing changed (make lab-status shows it)")
        write_state()
        return {"already_up": True}
    clear_leftovers(log)
    started = time.monotonic()
    base_path, build_seconds = base.build(log)
    _, public = console_key()
    _, mirror_host = base.mirror()
    net.make_bridge()
    net.start_apt_relay(mirror_host)
    boot: dict[str, float] = {}
    for h in HOSTS:  # every host's name and address in every /etc/hosts before any boots
        net.plug(h)
        host.prepare(h, base_path, public)
    for h in HOSTS:
        host.start(h, base_path, base.archives())
    try:
        with ThreadPoolExecutor(len(HOSTS)) as pool:
            booted = pool.map(lambda h: host.wait_running(h, allow_degraded=True), HOSTS)
            waited = dict(zip(HOSTS, booted, strict=True))
    except host.BootFailed as failure:
        log(f"{failure}\n--- its console ---\n{failure.console}")
        down(log=lambda *_: None)
        raise LabError(str(failure)) from None
    for h in HOSTS:
        boot[h.name] = waited[h]
        net.start_ssh_relay(h)
        if host.state(h) == "degraded":
            failed = run(h, "systemctl --failed --no-legend --plain").stdout.strip()
            log(f"{h.name} is up, but with failed units: {failed}")
    write_state()
    timings = {"build_s": build_seconds, "boot_s": boot, "total_s": time.monotonic() - started}
    log(f"the lab is up in {timings['total_s']:.1f} s" + _cached(build_seconds))
    return timings


def reset(log=print) -> dict:
    """Every host as freshly installed again: stopped, its own layer thrown away, booted anew
    from the base (new host keys). For tests that must not see what an earlier test installed.
    Returns the new state."""
    require_root()
    if not is_up():
        up(log=log)
    base_path, _ = base.build(log)
    _, public = console_key()
    for h in HOSTS:
        host.stop(h)
        shutil.rmtree(host.layers(h)["top"], ignore_errors=True)
        host.prepare(h, base_path, public)
    for h in HOSTS:
        host.start(h, base_path, base.archives())
    for h in HOSTS:
        host.wait_running(h)
    return write_state()


def _cached(build_seconds: float | None) -> str:
    return " (cached base)" if build_seconds is None else f" (base built in {build_seconds:.0f} s)"


def down(log=print, *, purge: bool = False) -> None:
    require_root()
    for h in (*HOSTS, *EXTRA_HOSTS):  # an extra host a test booted goes too
        host.stop(h)
        net.unplug(h)
    net.stop_relays()
    net.remove_bridge()
    STATE_FILE.unlink(missing_ok=True)
    if purge:
        shutil.rmtree(STATE / "hosts", ignore_errors=True)
    log("the lab is down: no host, relay, namespace or cgroup of it is left")


def clear_leftovers(log=print) -> None:
    """What a killed run (or a half-up lab) left behind goes first: a start begins clean."""
    leftovers = net.our_namespaces() or any(
        host.starter_pid(h) or any(d.exists() for d in host.cgroup_dirs(h))
        for h in (*HOSTS, *EXTRA_HOSTS)
    )
    if leftovers:
        log("clearing what an earlier lab left behind")
        down(log=lambda *_: None)
    net.stop_relays()


def host_key(h: LabHost) -> str:
    """The host's public SSH key, as its sshd presents it (type and base64)."""
    text = (host.layers(h)["upper"] / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
    return f"{text[0]} {text[1]}"


def write_state() -> dict:
    """What the console needs to reach the hosts, for `make run` and the tests to read."""
    private, _ = console_key()
    data = {
        "private_key_path": str(private),
        "hosts": [
            {
                "name": h.name,
                "ssh_address": h.relay_address,
                "ssh_port": SSH_PORT,
                "ssh_user": DEPLOY_USER,
                "service_address": h.address,
                "host_key": host_key(h),
            }
            for h in HOSTS
        ],
    }
    RUN.mkdir(parents=True, exist_ok=True)
    STATE_FILE.write_text(json.dumps(data, indent=2))
    return data


def status() -> list[dict]:
    rows = []
    for h in HOSTS:
        rows.append(
            {
                "name": h.name,
                "state": host.state(h),
                "ssh": f"{h.relay_address}:{SSH_PORT}",
                "service_address": h.address,
                "relay": "up" if net.relay_alive(f"relay-ssh-{h.name}") else "down",
                "memory_mib": _memory_mib(h),
            }
        )
    return rows


def _memory_mib(h: LabHost) -> int | None:
    for directory in host.cgroup_dirs(h):
        for name in ("memory.current", "memory.usage_in_bytes"):
            path = directory / name
            if path.exists():
                try:
                    return int(path.read_text()) // (1024 * 1024)
                except (OSError, ValueError):
                    pass
    return None


def run(h: LabHost, command: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """A shell command inside a host as root (tests and benchmarks)."""
    return host.in_host(h, "/bin/sh", "-c", command, timeout=timeout)


def offer(name: str, lab_port: int, machine_port: int) -> str:
    """Let the hosts reach a service of the machine's (listening on 127.0.0.1:machine_port) at
    the bridge address's `lab_port`, and nothing else; returns "address:port" for the hosts.
    See `net.start_port_relay`."""
    require_root()
    if not net.netns_exists(net.LAB_NETNS):
        raise LabError("the lab is down: start it before offering the hosts a service")
    return net.start_port_relay(name, lab_port, machine_port)


def withdraw(name: str) -> None:
    """End what `offer(name, ...)` started (safe to call twice)."""
    net.stop_port_relay(name)
