"""The lab's network: a bridge in a namespace of its own, each host's namespace on it through a
veth pair made inside those namespaces, and the relays that are the only ways in and out.

The machine's own namespace never gets a lab address, a lab interface or a route to the lab:
both ends of every veth are created in lab namespaces. It reaches a host's sshd through a relay
listening on a loopback address (127.0.77.N:22) that forwards to a unix socket, where a second
relay inside the lab namespace connects to the host. The hosts' apt reaches the machine's Debian
mirror the same way, the other way round, and nothing else.

A test may also offer the hosts one service of its own that runs on the machine (a git daemon
serving a repository, say): `start_port_relay(name, lab_port, machine_port)` listens on the
bridge address only (BRIDGE_ADDRESS:lab_port, inside the lab namespace) and forwards, through a
unix socket, to 127.0.0.1:machine_port on the machine. The machine's namespace still gets no lab
address or route, and the hosts still reach nothing but the bridge address:
`git clone git://BRIDGE_ADDRESS:9418/probe.git` inside a host reaches the machine's
`git daemon --listen=127.0.0.1 --port=N`. `stop_port_relay(name)` ends it; `down` ends them all.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

from .config import (
    APT_PROXY_PORT,
    BRIDGE_ADDRESS,
    EXTRA_HOSTS,
    HOSTS,
    LAB_NETNS,
    RUN,
    SSH_PORT,
    LabHost,
)


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(list(args), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip()}")
    return result


def netns_exists(name: str) -> bool:
    return Path(f"/run/netns/{name}").exists()


def our_namespaces() -> list[str]:
    """This lab's namespaces (another numbered lab's are not ours)."""
    out = sh("ip", "netns", "list", check=False).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    ours = {LAB_NETNS} | {h.netns for h in (*HOSTS, *EXTRA_HOSTS)}
    return [n for n in names if n in ours]


def make_bridge() -> None:
    if not netns_exists(LAB_NETNS):
        sh("ip", "netns", "add", LAB_NETNS)
    ns = ("ip", "-n", LAB_NETNS)
    sh(*ns, "link", "set", "lo", "up")
    if sh(*ns, "link", "show", "br0", check=False).returncode != 0:
        sh(*ns, "link", "add", "br0", "type", "bridge")
        sh(*ns, "addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", "br0")
    sh(*ns, "link", "set", "br0", "up")


def plug(host: LabHost) -> None:
    """The host's namespace with eth0 (fixed address, stable MAC) on the lab bridge; no default
    route: a host reaches the other hosts and the apt relay on the bridge, nothing else."""
    if not netns_exists(host.netns):
        sh("ip", "netns", "add", host.netns)
    inside = ("ip", "-n", host.netns)
    sh(*inside, "link", "set", "lo", "up")
    if sh(*inside, "link", "show", "eth0", check=False).returncode != 0:
        sh("ip", "-n", LAB_NETNS, "link", "add", host.veth, "type", "veth", "peer", "name",
           "eth0", "netns", host.netns)  # fmt: skip
        sh(*inside, "link", "set", "eth0", "address", host.mac)
        sh(*inside, "addr", "add", f"{host.address}/24", "dev", "eth0")
        sh("ip", "-n", LAB_NETNS, "link", "set", host.veth, "master", "br0")
    sh("ip", "-n", LAB_NETNS, "link", "set", host.veth, "up")
    sh(*inside, "link", "set", "eth0", "up")


def unplug(host: LabHost) -> None:
    sh("ip", "-n", LAB_NETNS, "link", "del", host.veth, check=False)
    if netns_exists(host.netns):
        sh("ip", "netns", "del", host.netns, check=False)


def remove_bridge() -> None:
    for name in our_namespaces():
        sh("ip", "netns", "del", name, check=False)


# --- Relays -----------------------------------------------------------------------------------


def _pidfile(name: str) -> Path:
    return RUN / f"{name}.pid"


def _start(name: str, command: list[str]) -> None:
    """A relay process (socat), recorded by pid file so that teardown finds it."""
    RUN.mkdir(parents=True, exist_ok=True)
    if relay_alive(name):
        return
    log = open(RUN / f"{name}.log", "ab")  # noqa: SIM115 (handed to the child)
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
    )
    _pidfile(name).write_text(str(process.pid))


def relay_alive(name: str) -> bool:
    try:
        return _is_relay(int(_pidfile(name).read_text()))
    except (OSError, ValueError):
        return False


def _is_relay(pid: int) -> bool:
    """A live socat of ours (not a zombie, not a recycled pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z" and cmdline.startswith(b"socat\0")


def _in_lab(*command: str) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{LAB_NETNS}", "--", *command]


def start_ssh_relay(host: LabHost) -> None:
    start_host_relay(host, SSH_PORT, "ssh")


def start_host_relay(host: LabHost, port: int, kind: str) -> str:
    """The machine's loopback `host.relay_address:port` → a unix socket → the host's lab
    address and `port` (its sshd: kind "ssh"; a web server the host runs: "http"). Returns
    "address:port" on the machine's side."""
    if not kind.isalnum() or not 0 < int(port) < 65536:
        raise ValueError(f"relay {kind!r} to port {port}: a word and a port number")
    sock = RUN / f"{kind}-{host.name}.sock"
    _start(
        f"relay-{kind}-{host.name}-lab",
        _in_lab(
            "socat",
            f"UNIX-LISTEN:{sock},fork,unlink-early,mode=600",
            f"TCP:{host.address}:{int(port)},connect-timeout=5",
        ),  # fmt: skip
    )
    _wait_for(sock)
    _start(
        f"relay-{kind}-{host.name}",
        [
            "socat",
            f"TCP-LISTEN:{int(port)},bind={host.relay_address},reuseaddr,fork",
            f"UNIX-CONNECT:{sock}",
        ],  # fmt: skip
    )
    return f"{host.relay_address}:{int(port)}"


def stop_host_relay(host: LabHost, kind: str) -> None:
    """End what `start_host_relay(host, ..., kind)` started (safe to call twice)."""
    _stop_relay(f"relay-{kind}-{host.name}", f"relay-{kind}-{host.name}-lab")
    (RUN / f"{kind}-{host.name}.sock").unlink(missing_ok=True)


def start_apt_relay(mirror_host: str) -> None:
    """Hosts' apt → the bridge address → a unix socket → the mirror's port 80 (only)."""
    sock = RUN / "apt.sock"
    _start("relay-apt", ["socat", f"UNIX-LISTEN:{sock},fork,unlink-early,mode=600",
                         f"TCP:{mirror_host}:80,connect-timeout=10"])  # fmt: skip
    _wait_for(sock)
    _start(
        "relay-apt-lab",
        _in_lab(
            "socat",
            f"TCP-LISTEN:{APT_PROXY_PORT},bind={BRIDGE_ADDRESS},reuseaddr,fork",
            f"UNIX-CONNECT:{sock}",
        ),  # fmt: skip
    )


def start_port_relay(name: str, lab_port: int, machine_port: int) -> str:
    """The bridge address's `lab_port` → a unix socket → 127.0.0.1:`machine_port` on the
    machine (loopback only); returns the address the hosts use ("10.77.0.1:9418"). A relay of
    the same name is replaced (the machine-side port may have changed)."""
    if not name.replace("-", "").isalnum():
        raise ValueError(f"relay name {name!r}: letters, digits and dashes only")
    for port in (lab_port, machine_port):
        if not 0 < int(port) < 65536:
            raise ValueError(f"port {port} is out of range")
    if int(lab_port) in (SSH_PORT, APT_PROXY_PORT):
        raise ValueError(f"port {lab_port} on the bridge is the lab's own")
    stop_port_relay(name)
    sock = RUN / f"port-{name}.sock"
    _start(
        f"relay-port-{name}",
        [
            "socat",
            f"UNIX-LISTEN:{sock},fork,unlink-early,mode=600",
            f"TCP:127.0.0.1:{int(machine_port)},connect-timeout=5",
        ],  # fmt: skip
    )
    _wait_for(sock)
    _start(
        f"relay-port-{name}-lab",
        _in_lab(
            "socat",
            f"TCP-LISTEN:{int(lab_port)},bind={BRIDGE_ADDRESS},reuseaddr,fork",
            f"UNIX-CONNECT:{sock}",
        ),  # fmt: skip
    )
    return f"{BRIDGE_ADDRESS}:{int(lab_port)}"


def stop_port_relay(name: str) -> None:
    _stop_relay(f"relay-port-{name}-lab", f"relay-port-{name}")
    (RUN / f"port-{name}.sock").unlink(missing_ok=True)


def _stop_relay(*pidnames: str) -> None:
    for pidname in pidnames:
        pidfile = _pidfile(pidname)
        try:
            pid = int(pidfile.read_text())
            if _is_relay(pid):
                os.killpg(pid, signal.SIGTERM)
                _wait_gone(pid)
        except (OSError, ValueError):
            pass
        pidfile.unlink(missing_ok=True)


def _wait_gone(pid: int, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while _is_relay(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def _wait_for(path: Path, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the relay did not create {path}")
        time.sleep(0.02)


def stop_relays() -> None:
    for pidfile in RUN.glob("relay-*.pid"):
        try:
            pid = int(pidfile.read_text())
            if _is_relay(pid):
                os.killpg(pid, signal.SIGTERM)
        except (OSError, ValueError):
            pass
        pidfile.unlink(missing_ok=True)
    for sock in RUN.glob("*.sock"):
        sock.unlink(missing_ok=True)
