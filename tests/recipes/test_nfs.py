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
    """What a userspace NFS client on `client` sees of beamrider's `path` (libnfs)."""
    url = f"nfs://{address('beamrider')}{path}"
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
    ports = lab_run("beamrider", "ss -Hltnp | grep ganesha.nfsd").stdout.splitlines()
    assert "*:2049" in [line.split()[3] for line in ports], ports
    assert "*:875" not in [line.split()[3] for line in ports]  # no rquota
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


def test_sunjammer_mounts_the_directories_and_writes_there_as_www_data(run_recipe, status_of):
    exported = run_recipe("nfs_exports", "beamrider", {"clients": "sunjammer"})
    assert exported.state == RunState.SUCCEEDED, output(exported)
    params = {"server": "beamrider"}
    code, said = status_of("nfs_mount", "sunjammer", params)
    assert code == 3 and f"{FILES} is not mounted" in said, said

    # A file of its own in a directory the mount would hide: refused, in words, nothing lost.
    lab_run("sunjammer", f"mkdir -p {FILES} && echo mine > {FILES}/local.txt")
    refused = run_recipe("nfs_mount", "sunjammer", params)
    assert refused.state == RunState.FAILED
    assert f"{FILES} holds 1 entries of its own that the mount would hide" in output(refused)
    assert lab_run("sunjammer", f"cat {FILES}/local.txt").stdout.strip() == "mine"
    lab_run("sunjammer", f"rm {FILES}/local.txt")

    run = run_recipe("nfs_mount", "sunjammer", params)
    assert run.state == RunState.SUCCEEDED, (run.error, output(run))
    assert f"{FILES}: mounted from {address('beamrider')}:{FILES}" in output(run)
    code, said = status_of("nfs_mount", "sunjammer", params)
    assert code == 0, said
    lab_run("sunjammer", f"runuser -u www-data -- sh -c 'echo from-sj > {STAGING}/sj.txt'")
    on_server = lab_run("beamrider", f"stat -c %U {STAGING}/sj.txt; cat {STAGING}/sj.txt")
    assert on_server.stdout.split() == ["www-data", "from-sj"]
    assert (
        "sj.txt"
        in lab_run("sunjammer", f"grep -c ' {STAGING} nfs ' /etc/fstab; ls {STAGING}").stdout
    )

    again = run_recipe("nfs_mount", "sunjammer", params)
    assert again.state == RunState.SUCCEEDED, output(again)
    assert "already in place" in output(again), output(again)
    assert lab_run("sunjammer", f"grep -c ' {FILES} nfs ' /etc/fstab").stdout.strip() == "1"

    # remora2 is not among the clients: the mount fails and says why.
    activate("remora2")
    denied = run_recipe("nfs_mount", "remora2", params)
    assert denied.state == RunState.FAILED
    assert f"cannot mount {address('beamrider')}:{FILES}" in output(denied), output(denied)
