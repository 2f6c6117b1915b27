"""The Debian 12 base every lab host boots from: built once with debootstrap from the machine's
own Debian mirror, cached, and rebuilt only when its recipe changes (the directory name carries
a hash of the recipe). Downloaded packages are kept in a shared archive across builds."""

import hashlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from .config import CACHE, DEPLOY_USER, SUITE


class LabError(Exception):
    """Something the person running the lab must fix, in one line."""


PACKAGES = [
    "openssh-server",
    "systemd",
    "systemd-sysv",
    "dbus",
    "libpam-systemd",
    "iproute2",
    "iputils-ping",
    "procps",
    "python3",
    "sudo",
    "ca-certificates",
    "curl",
    "netbase",
    "less",
    # The lab's userspace mount.nfs (HELPER below): fusepy over libfuse2, libnfs through ctypes.
    "python3-fusepy",
    "libnfs13",
]

# Lab only: the kernel here has no NFS client, so the hosts' `mount -t nfs` goes through a
# userspace NFS client over FUSE (lab/mount_nfs.py). Installed into the base as
# /sbin/mount.nfs(4) behind a dpkg diversion: a later `apt-get install nfs-common` puts Debian's
# own helper beside it (mount.nfs.distrib) and leaves the lab's in place. Never installed on a
# real host: nothing outside the lab uses it.
HELPER = Path(__file__).with_name("mount_nfs.py")
HELPER_TEXT = HELPER.read_text()  # read once: what the recipe hash covers is what is installed
HELPER_PATH = "/usr/local/lib/remora-lab/mount_nfs.py"

# Run in the new tree (chroot) once debootstrap is done: what makes it a lab host's base. It
# names no lab address: every numbered lab boots from the same base (hosts get theirs in
# host.prepare).
SETUP = f"""set -eu
rm -f /etc/ssh/ssh_host_*            # each host gets keys of its own at its first boot
: > /etc/machine-id                  # each host gets an id of its own too
ln -sf /proc/self/mounts /etc/mtab   # minbase has none; nfs-ganesha and mount want it
useradd --create-home --shell /bin/bash {DEPLOY_USER}
echo '{DEPLOY_USER} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/{DEPLOY_USER}
chmod 0440 /etc/sudoers.d/{DEPLOY_USER}
install -d -m 0700 -o {DEPLOY_USER} -g {DEPLOY_USER} /home/{DEPLOY_USER}/.ssh
# Never touch the machine's clock; no kernel NFS here.
ln -sf /dev/null /etc/systemd/system/systemd-timesyncd.service
ln -sf /dev/null /etc/systemd/system/run-rpc_pipefs.mount
ln -sf /dev/null /etc/systemd/system/systemd-networkd-wait-online.service
ln -sf /dev/null /etc/systemd/system/console-getty.service   # nobody logs in on the console
# The lab's mount.nfs (see HELPER; build() copied it in), diverted: nfs-common's goes beside it.
chmod 0755 {HELPER_PATH}
for name in mount.nfs mount.nfs4; do
  dpkg-divert --local --rename --add /sbin/$name >/dev/null
  ln -sf {HELPER_PATH} /sbin/$name
done
echo 'd /run/sendsigs.omit.d 0755 root root -' > /etc/tmpfiles.d/remora-lab.conf
echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/02keep-debs
rm -f /etc/apt/apt.conf.d/docker-clean
printf '[Journal]\\nStorage=volatile\\nRuntimeMaxUse=32M\\n' > /etc/systemd/journald.conf
apt-get clean
"""


def mirror() -> tuple[str, str]:
    """The machine's Debian mirror (from its apt sources) as (URL, host); never hard-coded.
    REMORA_LAB_MIRROR overrides it (another mirror of the same release)."""
    override = os.environ.get("REMORA_LAB_MIRROR", "").rstrip("/")
    if override:
        parts = urlsplit(override)
        if parts.scheme != "http" or not parts.hostname:
            raise LabError(f"REMORA_LAB_MIRROR must be an http:// URL, not {override!r}")
        return override, parts.hostname
    for path in _source_files():
        text = path.read_text()
        urls = re.findall(r"^\s*URIs:\s*(\S+)", text, re.M)
        urls += re.findall(r"^\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+\S+", text, re.M)
        for url in urls:
            if "security" in url:
                continue
            parts = urlsplit(url)
            if parts.scheme == "http" and parts.hostname:
                return url.rstrip("/"), parts.hostname
    raise LabError(
        "No http:// Debian mirror in /etc/apt/sources.list(.d): the lab installs from it."
    )


def _source_files() -> list[Path]:
    files = [Path("/etc/apt/sources.list")]
    files += sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    files += sorted(Path("/etc/apt/sources.list.d").glob("*.list"))
    return [f for f in files if f.is_file()]


def sources_list(url: str) -> str:
    security = url.rsplit("/", 1)[0] + "/debian-security" if url.endswith("/debian") else ""
    lines = [f"deb {url} {SUITE} main", f"deb {url} {SUITE}-updates main"]
    if security:
        lines.append(f"deb {security} {SUITE}-security main")
    return "\n".join(lines) + "\n"


def recipe_hash(url: str) -> str:
    recipe = "\n".join([SUITE, url, " ".join(PACKAGES), SETUP, sources_list(url), HELPER_TEXT])
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def archives() -> Path:
    """Downloaded .debs, shared by debootstrap and every host's apt, kept across builds."""
    path = CACHE / "archives"
    (path / "partial").mkdir(parents=True, exist_ok=True)
    return path


def base_dir() -> Path:
    url, _ = mirror()
    return CACHE / f"base-{recipe_hash(url)}"


def build(log=print) -> tuple[Path, float | None]:
    """The base for the current recipe: (its path, seconds spent building, None if cached)."""
    if shutil.which("debootstrap") is None:
        raise LabError("debootstrap is not installed: apt-get install debootstrap")
    url, _ = mirror()
    target = base_dir()
    if (target / ".complete").exists():
        return target, None
    in_use = {stamp.read_text() for stamp in Path("/var/lib").glob("remora-lab*/hosts/*/base")}
    for stale in CACHE.glob("base-*"):  # older recipes (unless a host still sits on one)
        if stale != target and stale.name not in in_use:
            shutil.rmtree(stale, ignore_errors=True)
    partial = CACHE / f".building-{target.name}"
    shutil.rmtree(partial, ignore_errors=True)
    started = time.monotonic()
    log(f"building the Debian 12 base from {url} (once; cached in {target})")
    command = [
        "debootstrap",
        "--variant=minbase",
        f"--cache-dir={archives()}",
        f"--include={','.join(PACKAGES)}",
        SUITE,
        str(partial),
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        last = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["no output"]
        raise LabError(f"debootstrap failed (is the mirror {url} reachable?): {last[0]}")
    (partial / "etc/apt/sources.list").write_text(sources_list(url))
    helper = partial / HELPER_PATH.lstrip("/")
    helper.parent.mkdir(parents=True, exist_ok=True)
    helper.write_text(HELPER_TEXT)
    setup = subprocess.run(
        ["chroot", str(partial), "/bin/sh", "-c", SETUP], capture_output=True, text=True
    )
    if setup.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise LabError(f"setting up the base failed: {setup.stderr.strip()[-300:]}")
    (partial / ".complete").write_text(recipe_hash(url))
    partial.rename(target)
    return target, time.monotonic() - started
