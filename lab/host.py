"""Booting and stopping one lab host: an overlay on the base, its own namespaces and cgroups,
systemd as PID 1, sshd with a key of its own, a deploy account that trusts the console's key."""

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

from . import net
from .config import (
    APT_PROXY_PORT,
    BRIDGE_ADDRESS,
    DEPLOY_USER,
    HOSTS,
    PREFIX,
    RUN,
    STATE,
    LabHost,
)

BOOT_SCRIPT = Path(__file__).with_name("boot.sh")
BOOT_TIMEOUT = 60.0


class BootFailed(Exception):
    def __init__(self, host: LabHost, why: str, console: str):
        super().__init__(f"{host.name} did not boot: {why}")
        self.console = console


# --- cgroups: a subtree of the project's own in every hierarchy -------------------------------


def _hierarchies() -> list[Path]:
    """The directory this process sits in, in every cgroup hierarchy it belongs to."""
    mounts: dict[str, Path] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        fstype, options = fields[sep + 1], fields[sep + 3].split(",")
        if fstype == "cgroup2":
            mounts["0"] = Path(fields[4])
        elif fstype == "cgroup":
            key = ",".join(sorted(o for o in options if o not in ("rw", "ro")))
            mounts[key] = Path(fields[4])
    found = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        number, controllers, path = line.split(":", 2)
        key = "0" if number == "0" else ",".join(sorted(controllers.split(",")))
        if key in mounts:
            found.append(mounts[key] / path.lstrip("/"))
    return found


def _cgroup_dirs_here(host: LabHost) -> list[Path]:
    return [h / PREFIX / host.name for h in _hierarchies()]


def _cgroup_record(host: LabHost) -> Path:
    return RUN / f"host-{host.name}.cgroups"


def cgroup_dirs(host: LabHost) -> list[Path]:
    """Where this process would put the host's groups, and where they were put at its start:
    on a cgroup v1 machine another process (`make lab` before `make test`) may sit in another
    group of a hierarchy (a memory group per process tree), and its `down` must find them."""
    here = _cgroup_dirs_here(host)
    try:
        made = [Path(line) for line in _cgroup_record(host).read_text().splitlines() if line]
    except OSError:
        made = []
    return list(dict.fromkeys([*made, *here]))


def _make_cgroups(host: LabHost) -> list[Path]:
    made = []
    for directory in _cgroup_dirs_here(host):
        for level in (directory.parent, directory):
            level.mkdir(exist_ok=True)
            # A v1 cpuset group takes no process until it has cpus and memory nodes.
            for knob in ("cpuset.cpus", "cpuset.mems"):
                if (level / knob).exists() and not (level / knob).read_text().strip():
                    (level / knob).write_text((level.parent / knob).read_text())
        made.append(directory / "cgroup.procs")
    return made


def remove_cgroups(host: LabHost) -> None:
    """Depth first: systemd made groups of its own inside the host's."""
    for directory in cgroup_dirs(host):
        if not directory.exists():
            continue
        for sub in sorted(directory.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if sub.is_dir():
                _rmdir(sub)
        _rmdir(directory)
        if directory.parent.exists() and not any(p.is_dir() for p in directory.parent.iterdir()):
            _rmdir(directory.parent)


def _rmdir(path: Path) -> None:
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)  # its last processes are still leaving


# --- Layers and first-boot files --------------------------------------------------------------


def layers(host: LabHost) -> dict[str, Path]:
    top = STATE / "hosts" / host.name
    return {"top": top, "upper": top / "upper", "work": top / "work", "root": top / "root"}


def prepare(host: LabHost, base: Path, console_public_key: str) -> None:
    """The host's own layer: name, hosts file, machine id, sshd keys, the deploy account's key.
    A layer made over another base is thrown away (index=on ties it to its base)."""
    paths = layers(host)
    stamp = paths["top"] / "base"
    if stamp.exists() and stamp.read_text() != base.name:
        shutil.rmtree(paths["top"])
    for key in ("upper", "work", "root"):
        paths[key].mkdir(parents=True, exist_ok=True)
    stamp.write_text(base.name)
    upper = paths["upper"]
    (upper / "etc/ssh").mkdir(parents=True, exist_ok=True)
    (upper / "etc/apt/apt.conf.d").mkdir(parents=True, exist_ok=True)
    (upper / "etc/apt/apt.conf.d/01remora-lab-proxy").write_text(
        f'Acquire::http::Proxy "http://{BRIDGE_ADDRESS}:{APT_PROXY_PORT}/";\n'
    )
    (upper / "etc/hostname").write_text(f"{host.name}\n")
    hosts = "127.0.0.1 localhost\n" + "".join(f"{h.address} {h.name}\n" for h in HOSTS)
    (upper / "etc/hosts").write_text(hosts)
    machine_id = upper / "etc/machine-id"
    if not machine_id.exists():
        machine_id.write_text(uuid.uuid5(uuid.NAMESPACE_DNS, f"{PREFIX}.{host.name}").hex + "\n")
    if not (upper / "etc/ssh/ssh_host_ed25519_key").exists():
        net.sh("ssh-keygen", "-A", "-f", str(upper))
    uid, gid = _ids(base, DEPLOY_USER)
    home = upper / "home" / DEPLOY_USER
    ssh_dir = home / ".ssh"
    for directory, mode in ((home, 0o755), (ssh_dir, 0o700)):
        directory.mkdir(parents=True, exist_ok=True)
        os.chown(directory, uid, gid)
        directory.chmod(mode)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(console_public_key.strip() + "\n")
    os.chown(keys, uid, gid)
    keys.chmod(0o600)


def _ids(base: Path, user: str) -> tuple[int, int]:
    for line in (base / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise RuntimeError(f"the base has no {user} account")


# --- Running ----------------------------------------------------------------------------------


def _pidfile(host: LabHost) -> Path:
    return RUN / f"host-{host.name}.pid"


def console_log(host: LabHost) -> Path:
    return RUN / f"console-{host.name}.log"


def starter_pid(host: LabHost) -> int | None:
    try:
        pid = int(_pidfile(host).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return None if _zombie(pid) else pid


def init_pid(host: LabHost) -> int | None:
    """The host's PID 1 (systemd), as the machine numbers it."""
    pid = starter_pid(host)
    if pid is None:
        return None
    try:  # the wrapper execs nsenter → unshare, whose only child is the host's PID 1
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def in_host(host: LabHost, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a command inside the host (all its namespaces and its root), as root."""
    pid = init_pid(host)
    if pid is None:
        raise RuntimeError(f"{host.name} is not running")
    return subprocess.run(
        ["nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w", *command],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def state(host: LabHost) -> str:
    """systemd's own word for the host: running, starting, degraded, ... or "stopped"."""
    if init_pid(host) is None:
        return "stopped"
    try:
        result = in_host(host, "systemctl", "is-system-running", timeout=10)
    except (RuntimeError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip() or "unknown"


def start(host: LabHost, base: Path, archives: Path) -> None:
    RUN.mkdir(parents=True, exist_ok=True)
    paths = layers(host)
    procs = _make_cgroups(host)
    _cgroup_record(host).write_text("".join(f"{p.parent}\n" for p in procs))
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LAB_BASE": str(base),
        "LAB_UPPER": str(paths["upper"]),
        "LAB_WORK": str(paths["work"]),
        "LAB_ROOT": str(paths["root"]),
        "LAB_ARCHIVES": str(archives),
        "LAB_HOSTNAME": host.name,
        "LAB_CONSOLE": str(console_log(host)),
    }
    # Join the host's cgroups first, then take a cgroup namespace rooted there.
    wrapper = 'for f in "$@"; do echo $$ > "$f"; done; exec nsenter --net="$NETNS" -- ' + (
        "unshare --mount --pid --uts --ipc --cgroup --fork --kill-child -- /bin/sh " + "$BOOT"
    )
    env.update({"NETNS": f"/run/netns/{host.netns}", "BOOT": str(BOOT_SCRIPT)})
    log = open(console_log(host), "wb")  # noqa: SIM115 (the host's console, handed over)
    process = subprocess.Popen(
        ["/bin/sh", "-c", wrapper, "lab-start", *map(str, procs)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _pidfile(host).write_text(str(process.pid))


def wait_running(
    host: LabHost, timeout: float = BOOT_TIMEOUT, *, allow_degraded: bool = False
) -> float:
    """Seconds until systemd says the host is running with no failed unit (or, when
    `allow_degraded`, up with failed units: a service someone installed may fail to start)."""
    started = time.monotonic()
    deadline = started + timeout
    last = "stopped"
    while time.monotonic() < deadline:
        if starter_pid(host) is None:
            raise BootFailed(host, "its init exited", _console(host))
        last = state(host)
        if last == "running":
            return time.monotonic() - started
        if last == "degraded" and allow_degraded:
            return time.monotonic() - started
        if last == "degraded":
            failed = in_host(host, "systemctl", "--failed", "--no-legend", "--plain").stdout
            raise BootFailed(host, f"failed units: {failed.strip()}", _console(host))
        time.sleep(0.1)
    raise BootFailed(host, f"still {last} after {timeout:.0f} s", _console(host))


def _console(host: LabHost) -> str:
    try:
        return console_log(host).read_text(errors="replace")[-4000:]
    except OSError:
        return ""


def stop(host: LabHost, timeout: float = 15.0) -> None:
    """Ask systemd to power off (SIGRTMIN+4), then make sure: kill what is left, free the
    cgroups. Idempotent."""
    pid1, starter = init_pid(host), starter_pid(host)
    if pid1 is not None:
        os.kill(pid1, signal.SIGRTMIN + 4)
    deadline = time.monotonic() + timeout
    while starter is not None and time.monotonic() < deadline:
        if not Path(f"/proc/{starter}").exists() or _zombie(starter):
            break
        time.sleep(0.1)
    if starter is not None:
        with contextlib.suppress(OSError):
            os.killpg(starter, signal.SIGKILL)
    for procs in cgroup_dirs(host):
        _kill_all(procs)
    remove_cgroups(host)
    if not any(d.exists() for d in cgroup_dirs(host)):
        _cgroup_record(host).unlink(missing_ok=True)
    _pidfile(host).unlink(missing_ok=True)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def _kill_all(directory: Path) -> None:
    """SIGKILL whatever is still in the host's cgroup tree (a killed run leaves such things)."""
    if not directory.exists():
        return
    for procs in directory.rglob("cgroup.procs"):
        try:
            pids = procs.read_text().split()
        except OSError:
            continue
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(int(pid), signal.SIGKILL)
