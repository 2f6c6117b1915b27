"""The lab never touches the machine it runs on.

Before and after a whole up-and-down cycle the machine's own network namespace has the same
addresses, routes and listening sockets, its mount table and kernel settings are the same, and
no cgroup, namespace, process or socket of the lab is left. While the lab is up, the machine's
namespace holds no lab address and no route to the lab: it reaches the hosts through loopback
relays only. Teardown is idempotent, and a start clears what a killed run left behind.
"""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lab import control, host, net
from lab.config import HOSTS, LAB_NETNS, PREFIX, RUN, STATE, SUBNET

pytestmark = pytest.mark.lab

# /proc/sys entries that change by themselves (counters, randomness, clocks).
VOLATILE = re.compile(
    r"^(kernel/random/|kernel/ns_last_pid|kernel/pty/nr|fs/dentry-state|fs/inode-|fs/file-nr|"
    r"fs/aio-nr|fs/quota/|net/netfilter/nf_conntrack_count|kernel/tainted|"
    r"net/ipv4/tcp_fastopen_key|kernel/sched_domain|fs/fscache|kernel/perf_event_max|"
    r"fs/binfmt_misc/)"
)


def _json(*command: str) -> list:
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def _sysctls() -> dict[str, str]:
    values = {}
    for path in Path("/proc/sys").rglob("*"):
        name = str(path.relative_to("/proc/sys"))
        if VOLATILE.match(name) or not path.is_file() or not os.access(path, os.R_OK):
            continue
        try:
            values[name] = path.read_text()
        except OSError:
            continue
    return values


def _machine() -> dict:
    """What the lab must leave as it found it."""
    addresses = {
        (link["ifname"], a["local"], a["prefixlen"])
        for link in _json("ip", "-j", "addr")
        for a in link.get("addr_info", [])
    }
    routes = _json("ip", "-j", "route", "show", "table", "all")
    routes += _json("ip", "-j", "-6", "route", "show", "table", "all")
    listening = subprocess.run(["ss", "-Hltun"], capture_output=True, text=True).stdout
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return {
        "addresses": sorted(addresses),
        "routes": sorted(json.dumps(r, sort_keys=True) for r in routes),
        "listening": sorted(
            {" ".join(line.split()[:1] + line.split()[4:5]) for line in listening.splitlines()}
        ),  # fmt: skip
        "links": sorted(link["ifname"] for link in _json("ip", "-j", "link")),
        "mounts": sorted(mounts),
        "sysctls": _sysctls(),
    }


def _lab_cgroups() -> list[str]:
    return [str(p) for p in Path("/sys/fs/cgroup").glob(f"**/{PREFIX}") if p.is_dir()]


def _lab_processes() -> list[str]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if state == "Z":
            continue
        try:
            ours = f"LAB_ROOT={STATE}/".encode() in (proc / "environ").read_bytes()
        except OSError:
            ours = False
        if str(RUN) in cmdline or ours:
            found.append(cmdline)
    return found


@pytest.fixture
def lab_was_up():
    """These tests take the lab down; they put it back for the tests after them."""
    from tests.fixtures.lab import ensure_lab_tools

    ensure_lab_tools()
    was_up = control.is_up()
    control.down(log=lambda *_: None)
    yield
    if was_up:
        control.up(log=lambda *_: None)


def test_up_and_down_leave_the_machine_as_it_was(lab_was_up):
    before = _machine()

    control.up(log=lambda *_: None)
    during = _machine()
    control.down(log=lambda *_: None)
    after = _machine()

    # While up: no lab address, interface or route in the machine's namespace; only relays.
    assert not [a for a in during["addresses"] if a[1].startswith(f"{SUBNET}.")]
    assert not [r for r in during["routes"] if f'"{SUBNET}.' in r]
    assert during["links"] == before["links"]
    # The hosts' mounts live in their own namespaces; only `ip netns` pins show here.
    pinned = [m for m in during["mounts"] if not m.startswith("/run/netns/")]
    assert pinned == before["mounts"]
    relays = {f"{h.relay_address}:22" for h in HOSTS}
    assert relays <= {entry.split()[1] for entry in during["listening"]}
    # After: exactly as before.
    assert after["addresses"] == before["addresses"]
    assert after["routes"] == before["routes"]
    # Nothing listens that did not before (other programs' sockets may have closed meanwhile).
    assert set(after["listening"]) - set(before["listening"]) == set()
    assert not relays & {entry.split()[1] for entry in after["listening"]}
    assert after["links"] == before["links"]
    assert after["mounts"] == before["mounts"]
    changed = {k for k in before["sysctls"].keys() | after["sysctls"].keys()
               if before["sysctls"].get(k) != after["sysctls"].get(k)}  # fmt: skip
    assert changed == set(), f"kernel settings changed: {sorted(changed)[:20]}"
    assert _lab_cgroups() == []
    assert net.our_namespaces() == []
    assert _lab_processes() == []


def test_down_finds_the_groups_of_a_lab_started_from_other_cgroups(lab_was_up):
    """`make lab` and `make test` are different processes; on a cgroup v1 machine they may sit
    in different groups of a hierarchy (a memory group per process tree). The `down` of one
    must still remove what the `up` of the other made (CI once kept a memory group)."""
    elsewhere = [h / f"{PREFIX}-elsewhere" for h in host._hierarchies()]
    for directory in elsewhere:
        directory.mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):
            if (directory / knob).exists() and not (directory / knob).read_text().strip():
                (directory / knob).write_text((directory.parent / knob).read_text())
    join = "".join(f'echo $$ > "{d}/cgroup.procs"; ' for d in elsewhere)
    try:
        subprocess.run(
            ["/bin/sh", "-c", join + 'exec "$0" -m lab up', sys.executable],
            check=True, capture_output=True, timeout=900, cwd=Path(__file__).parents[2],
        )  # fmt: skip
        made = [d for h in HOSTS for d in host.cgroup_dirs(h) if d.exists()]
        assert any(str(d).startswith(tuple(map(str, elsewhere))) for d in made), made

        control.down(log=lambda *_: None)

        assert _lab_cgroups() == [] and _lab_processes() == []
    finally:
        control.down(log=lambda *_: None)
        for directory in elsewhere:
            directory.rmdir()


def test_down_twice_is_harmless(lab_was_up):
    control.down(log=lambda *_: None)
    control.down(log=lambda *_: None)

    assert net.our_namespaces() == [] and _lab_cgroups() == []


def test_a_start_clears_what_a_killed_run_left_behind(lab_was_up):
    control.up(log=lambda *_: None)
    # A killed run: the hosts' starters and the relays die at once, nothing is cleaned up.
    for h in HOSTS:
        os.killpg(host.starter_pid(h), signal.SIGKILL)
    for pidfile in RUN.glob("relay-*.pid"):
        os.killpg(int(pidfile.read_text()), signal.SIGKILL)
    assert net.netns_exists(LAB_NETNS)

    control.up(log=lambda *_: None)

    assert control.is_up()
    assert all(host.state(h) == "running" for h in HOSTS)
    control.down(log=lambda *_: None)
    assert _lab_cgroups() == [] and net.our_namespaces() == [] and _lab_processes() == []


def test_up_while_up_says_so_and_changes_nothing(lab_was_up, capsys):
    control.up(log=lambda *_: None)
    pids = {h.name: host.init_pid(h) for h in HOSTS}

    said = []
    result = control.up(log=said.append)

    assert result == {"already_up": True}
    assert said == ["the lab is already up; nothing changed (make lab-status shows it)"]
    assert {h.name: host.init_pid(h) for h in HOSTS} == pids
    control.down(log=lambda *_: None)
