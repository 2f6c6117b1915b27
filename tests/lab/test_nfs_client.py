"""The lab's hosts mount NFS for real (lab/mount_nfs.py: libnfs behind FUSE, lab only): an
nfs-ganesha export on beamrider, mounted on sunjammer through /etc/fstab and systemd's mount
unit, with the caller's uid on the server, root squashed, other hosts refused, a mount that
outlives the SSH session that made it and comes back after a reboot. sunjammer gets Debian's
nfs-common first, as a recipe would install it: the lab's helper must stay in place."""

import time
from pathlib import Path

import pytest

from jobs import ssh
from lab import base, control, host
from lab.config import BY_NAME

pytestmark = pytest.mark.lab

BEAMRIDER, SUNJAMMER, REMORA2 = BY_NAME["beamrider"], BY_NAME["sunjammer"], BY_NAME["remora2"]
EXPORT, MOUNT, UNIT = "/srv/files", "/var/www/files", "var-www-files.mount"
CLIENT = f"/usr/bin/python3 /sbin/mount.nfs beamrider:{EXPORT}"  # the NFS client, as ps shows it
APT = "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q"
# A minimal VFS export: read-write for sunjammer only, root squashed to nobody (ganesha's own
# default anonymous id is 4294967294). Graceless: no 90 s grace period after the start.
GANESHA_CONF = f"""
NFS_CORE_PARAM {{ Protocols = 3, 4; }}
NFSv4 {{ Graceless = true; }}
EXPORT {{
    Export_Id = 1;
    Path = {EXPORT};
    Pseudo = {EXPORT};
    Access_Type = None;
    Squash = Root_Squash;
    Anonymous_Uid = 65534;
    Anonymous_Gid = 65534;
    SecType = sys;
    FSAL {{ Name = VFS; }}
    CLIENT {{ Clients = {SUNJAMMER.address}; Access_Type = RW; }}
}}
"""
SERVE = f"""set -e
install -d -o www-data -g www-data -m 0755 {EXPORT}
install -d -m 1777 {EXPORT}/public
cat > /etc/ganesha/ganesha.conf <<'EOF'
{GANESHA_CONF}
EOF
systemctl restart nfs-ganesha
"""
MOUNT_BY_FSTAB = f"""set -e
mkdir -p {MOUNT}
echo 'beamrider:{EXPORT} {MOUNT} nfs defaults,_netdev 0 0' >> /etc/fstab
systemctl daemon-reload
systemctl start {UNIT}
"""
FILE_WORK = """set -e
mkdir -p uploads/2026
echo draft > staged.txt
mv staged.txt uploads/2026/final.txt
mv uploads/2026 uploads/done
head -c 3000000 /dev/urandom > big.bin
ln -s uploads/done/final.txt latest
touch -m -d @981173106 uploads/done/final.txt
touch gone && rm gone
"""


def _sh(h, command: str, timeout: float = 120) -> str:
    result = control.run(h, command, timeout=timeout)
    assert result.returncode == 0, f"{h.name}: {command}\n{result.stdout}{result.stderr}"
    return result.stdout


def _as_www_data(h, script: str, directory: str) -> str:
    return _sh(h, f"cd {directory} && sudo -u www-data sh -c '{script}'")


def _ssh(state: dict, name: str, script: str) -> tuple[int | None, bool, str]:
    """`script` as deploy through the console's own SSH code, the session closed after it:
    (exit code, whether it timed out, output)."""
    entry = next(h for h in state["hosts"] if h["name"] == name)
    key = Path(state["private_key_path"]).read_text()
    target = ssh.Target(
        entry["ssh_address"], entry["ssh_port"], entry["ssh_user"], entry["host_key"], key,
        "ssh-ed25519",
    )  # fmt: skip
    out = bytearray()
    client, _ = ssh.borrow(target)
    try:
        outcome = ssh.run_script(
            client,
            script,
            timeout=30,
            on_output=lambda stream, data: out.extend(data),
            should_cancel=lambda: False,
        )
    finally:
        client.close()
    return outcome.exit_code, outcome.timed_out, out.decode(errors="replace")


@pytest.fixture(scope="module")
def nfs(fresh_lab):
    """nfs-ganesha exporting EXPORT (www-data's) on beamrider; nfs-common on sunjammer, the
    export in its fstab, mounted by systemd. Returns how long the installs and the rest took."""
    started = time.monotonic()
    # One after the other: the hosts share one apt archive directory, and its lock.
    _sh(BEAMRIDER, f"{APT} nfs-ganesha nfs-ganesha-vfs", timeout=600)
    _sh(SUNJAMMER, f"{APT} nfs-common", timeout=600)
    installed = time.monotonic()
    _sh(BEAMRIDER, SERVE)
    _sh(SUNJAMMER, MOUNT_BY_FSTAB)
    return {"install_s": installed - started, "mount_s": time.monotonic() - installed}


def test_an_fstab_line_is_mounted_by_systemd_over_nfs(nfs, capsys):
    active = control.run(SUNJAMMER, f"systemctl is-active {UNIT}").stdout.strip()
    mounts = _sh(SUNJAMMER, "cat /proc/self/mountinfo").splitlines()
    [mount] = [line for line in mounts if line.split()[4] == MOUNT]
    cgroup = _sh(SUNJAMMER, f"cat /proc/$(pgrep -f '^{CLIENT} {MOUNT}')/cgroup")

    assert active == "active"
    assert control.run(SUNJAMMER, f"mountpoint -q {MOUNT}").returncode == 0
    assert f" - fuse.nfs beamrider:{EXPORT} rw," in mount
    assert "allow_other" in mount.split()[-1]
    assert f"/system.slice/{UNIT}" in cgroup, "the NFS client serves on in the mount unit"
    with capsys.disabled():
        print(
            f"\nnfs: apt installs {nfs['install_s']:.1f} s; export + mount {nfs['mount_s']:.1f} s"
        )


def test_nfs_common_leaves_the_lab_helper_in_place_and_no_unit_failed(nfs):
    for h in (SUNJAMMER, BEAMRIDER):  # nfs-common: installed on one, pulled by nfs-ganesha here
        helper = _sh(h, "readlink -f /sbin/mount.nfs /sbin/mount.nfs4").split()
        debians = _sh(h, "dpkg-divert --truename /sbin/mount.nfs && dpkg -S /sbin/mount.nfs")
        setuid = control.run(h, "test -u /sbin/mount.nfs.distrib").returncode
        failed = _sh(h, "systemctl --failed --no-legend --plain")

        assert helper == ["/usr/local/lib/remora-lab/mount_nfs.py"] * 2, h.name
        assert debians.splitlines() == [
            "/sbin/mount.nfs.distrib",
            "local diversion from: /sbin/mount.nfs",
            "local diversion to: /sbin/mount.nfs.distrib",
            "nfs-common: /sbin/mount.nfs",
        ]
        assert setuid == 0, "Debian's own mount.nfs sits beside the lab's"
        assert failed.strip() == "", f"{h.name}: {failed}"


def test_www_data_writes_as_itself_and_beamrider_sees_www_datas_file(nfs):
    _as_www_data(SUNJAMMER, "echo written on sunjammer > page.txt", MOUNT)
    on_server = _sh(BEAMRIDER, f"stat -c '%u:%g %a' {EXPORT}/page.txt; cat {EXPORT}/page.txt")
    _as_www_data(BEAMRIDER, "echo written on beamrider > back.txt", EXPORT)
    on_client = _as_www_data(SUNJAMMER, "cat back.txt; stat -c %U back.txt", MOUNT)

    assert on_server.splitlines() == ["33:33 644", "written on sunjammer"]
    assert on_client.splitlines() == ["written on beamrider", "www-data"]


def test_mkdir_mv_rm_symlinks_times_and_a_larger_file_work(nfs):
    _as_www_data(SUNJAMMER, FILE_WORK, MOUNT)
    here = _as_www_data(SUNJAMMER, "sha256sum big.bin; cat latest; ls uploads", MOUNT)
    there = _sh(BEAMRIDER, f"cd {EXPORT} && sha256sum big.bin && readlink latest && ls")
    mtime = _sh(BEAMRIDER, f"stat -c %Y {EXPORT}/uploads/done/final.txt")

    assert here.splitlines() == [there.splitlines()[0], "draft", "done"]
    assert there.splitlines()[1:] == [
        "uploads/done/final.txt",
        *["back.txt", "big.bin", "latest", "page.txt", "public", "uploads"],
    ]
    assert mtime.strip() == "981173106", "touch -m sets the modification time alone"
    _as_www_data(SUNJAMMER, "rm -r uploads big.bin latest", MOUNT)
    assert _sh(BEAMRIDER, f"ls {EXPORT}").split() == ["back.txt", "page.txt", "public"]


def test_root_is_squashed_and_others_get_what_the_modes_allow(nfs):
    denied = control.run(SUNJAMMER, f"touch {MOUNT}/by-root")
    also_denied = control.run(SUNJAMMER, f"sudo -u nobody touch {MOUNT}/by-nobody")
    _sh(SUNJAMMER, f"touch {MOUNT}/public/by-root")  # a world-writable directory
    owner = _sh(BEAMRIDER, f"stat -c %u:%g {EXPORT}/public/by-root")

    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    assert also_denied.returncode != 0 and "Permission denied" in also_denied.stderr
    assert owner.strip() == "65534:65534", "root's file belongs to the anonymous user on the server"
    assert _sh(BEAMRIDER, f"ls {EXPORT}").split() == ["back.txt", "page.txt", "public"]


def test_a_host_not_in_the_client_list_is_refused_with_a_clear_error(nfs):
    refused = control.run(REMORA2, f"mkdir -p /mnt/f && mount -t nfs beamrider:{EXPORT} /mnt/f")

    assert refused.returncode == 32, refused.stdout + refused.stderr
    said = f"mount.nfs: access denied by server while mounting beamrider:{EXPORT}"
    assert refused.stderr.strip() == said
    assert control.run(REMORA2, "mountpoint -q /mnt/f").returncode != 0


def test_ro_vers_4_and_options_it_does_not_know_are_accepted(nfs):
    options = "ro,vers=4,hard,noatime,_netdev,x-made-up=1"
    mounted = control.run(
        SUNJAMMER, f"mkdir -p /mnt/ro && mount -t nfs -o {options} beamrider:{EXPORT} /mnt/ro"
    )
    read = control.run(SUNJAMMER, "sudo -u www-data cat /mnt/ro/page.txt")
    write = control.run(SUNJAMMER, "sudo -u www-data touch /mnt/ro/nope")
    flags = _sh(SUNJAMMER, "findmnt -n -o OPTIONS /mnt/ro")
    _sh(SUNJAMMER, "umount /mnt/ro")

    assert mounted.returncode == 0, mounted.stderr
    assert read.stdout == "written on sunjammer\n"
    assert write.returncode != 0 and "Read-only file system" in write.stderr
    assert flags.startswith("ro,") and "noatime" in flags


def test_a_mount_made_over_ssh_outlives_the_session(nfs, fresh_lab):
    again = f"sudo umount {MOUNT} && ! mountpoint -q {MOUNT} && sudo mount {MOUNT} && echo ok"
    code, timed_out, output = _ssh(fresh_lab, "sunjammer", again)
    assert (code, timed_out, output) == (0, False, "ok\n")  # no client kept the session open

    code, _, output = _ssh(fresh_lab, "sunjammer", f"mountpoint {MOUNT}; cat {MOUNT}/page.txt")
    assert (code, output) == (0, f"{MOUNT} is a mountpoint\nwritten on sunjammer\n")


def test_the_mount_comes_back_after_sunjammer_reboots(nfs, capsys):
    started = time.monotonic()
    host.stop(SUNJAMMER)
    assert host.state(SUNJAMMER) == "stopped"
    host.start(SUNJAMMER, base.base_dir(), base.archives())
    host.wait_running(SUNJAMMER)  # "running": no failed unit, the mount unit included
    control.write_state()
    rebooted = time.monotonic() - started

    assert _sh(SUNJAMMER, f"systemctl is-active {UNIT}").strip() == "active"
    assert _as_www_data(SUNJAMMER, "cat page.txt", MOUNT) == "written on sunjammer\n"
    with capsys.disabled():
        print(f"\nnfs: sunjammer rebooted, the mount back, in {rebooted:.1f} s")


def test_umount_ends_the_mount_and_its_client(nfs):
    _sh(SUNJAMMER, f"umount {MOUNT}")

    assert control.run(SUNJAMMER, f"mountpoint -q {MOUNT}").returncode != 0
    lingering = f"systemctl is-active -q {UNIT} || pgrep -f '^{CLIENT}'"
    deadline = time.monotonic() + 5  # systemd and the client hear of it a moment later
    while control.run(SUNJAMMER, lingering).returncode == 0:
        assert time.monotonic() < deadline, "the mount unit or the NFS client outlived the mount"
        time.sleep(0.1)
    assert control.run(SUNJAMMER, f"systemctl is-active {UNIT}").stdout.strip() == "inactive"
