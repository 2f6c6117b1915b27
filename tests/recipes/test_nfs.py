"""NFS on the lab: beamrider exports the two data directories with NFS-Ganesha to sunjammer
only; sunjammer mounts them through /etc/fstab and writes as www-data, and remora2 is refused;
second runs change nothing; the status companions say what is missing."""

import pytest

from hosts.models import Host
from jobs.models import RunState

from .conftest import output
from .test_perlbal import APT, activate, lab_run

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

FILES, STAGING = "/srv/remora/files", "/srv/remora/public-staging"


def address(name: str) -> str:
    return Host.objects.get(name=name).reach_address


def nfs_ls(client: str, path: str) -> str:
    """What a userspace NFSv4 client on `client` sees of beamrider's `path` (libnfs)."""
    url = f"nfs://{address('beamrider')}{path}?version=4"
    return f"nfs-ls {url} 2>&1"


def test_beamrider_exports_the_data_directories_to_sunjammer_only(run_recipe, status_of):
    activate("remora2")
    params = {"clients": "sunjammer"}
    code, said = status_of("nfs_exports", "beamrider", params)
    assert code == 3 and "missing:" in said, said

    run = run_recipe("nfs_exports", "beamrider", params)
    assert run.state == RunState.SUCCEEDED, (run.error, output(run))
    assert f"exported read-write to {address('sunjammer')}" in output(run)
    code, said = status_of("nfs_exports", "beamrider", params)
    assert code == 0, said
    # NFSv4 only: ganesha listens on 2049 and nowhere else (no mountd, no rquota).
    ports = lab_run("beamrider", "ss -Hltnp | grep ganesha.nfsd").stdout.splitlines()
    assert [line.split()[3] for line in ports] == ["*:2049"], ports
    owners = lab_run("beamrider", f"stat -c %U {FILES} {STAGING}").stdout.split()
    assert owners == ["www-data", "www-data"]

    again = run_recipe("nfs_exports", "beamrider", params)
    assert again.state == RunState.SUCCEEDED, output(again)
    assert "already in place" in output(again), output(again)

    # A file the server holds is seen over NFS from sunjammer; remora2 gets nothing.
    lab_run("beamrider", f"echo hello > {FILES}/probe.txt")
    for client in ("sunjammer", "remora2"):
        lab_run(client, APT.format(pkgs="libnfs-utils"))
    seen = lab_run("sunjammer", nfs_ls("sunjammer", FILES)).stdout
    assert "probe.txt" in seen, seen
    refused = lab_run("remora2", nfs_ls("remora2", FILES) + " || true").stdout
    assert "probe.txt" not in refused, refused

    # Another client list is a change: remora2 now, sunjammer no longer.
    moved = run_recipe("nfs_exports", "beamrider", {"clients": "remora2"})
    assert moved.state == RunState.SUCCEEDED, output(moved)
    assert "already in place" not in output(moved)
    code, said = status_of("nfs_exports", "beamrider", params)
    assert code == 3 and "does not export" in said, said
    assert "probe.txt" in lab_run("remora2", nfs_ls("remora2", FILES)).stdout
    gone = lab_run("sunjammer", nfs_ls("sunjammer", FILES) + " || true").stdout
    assert "probe.txt" not in gone, gone
