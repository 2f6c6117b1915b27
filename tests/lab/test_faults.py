"""`make lab` refused in one line, leaving nothing half-made: without root, with an unreachable
mirror, with a bad mirror setting."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]


def _lab(*args: str, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "lab", *args]
    return subprocess.run(
        command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )


def _one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_without_root_it_says_so_in_one_line(monkeypatch, capsys):
    from lab.__main__ import main

    monkeypatch.setattr(os, "geteuid", lambda: 1000)

    assert main(["up"]) == 1
    said = capsys.readouterr().err.strip().splitlines()
    assert said == ["lab: the lab needs root (namespaces, cgroups, mounts): run it as root"]


def test_make_lab_without_root_says_so_in_one_line():
    result = subprocess.run(
        [
            "setpriv",
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "make",
            "-s",
            "lab",
        ],  # fmt: skip
        cwd=ROOT,
        capture_output=True,
        text=True,
    )

    assert result.returncode != 0
    ours, *makes = result.stderr.strip().splitlines()
    assert ours == "make: the lab needs root (namespaces, cgroups, mounts); run it as root"
    # make's own note of the exit ("make[2]: ***" when the tests themselves run under make).
    assert all(re.match(r"make(\[\d+\])?: \*\*\* ", line) for line in makes), makes


def test_an_unreachable_mirror_is_one_line_and_leaves_no_half_made_base(tmp_path):
    cache = tmp_path / "cache"
    result = _lab(
        "build", REMORA_LAB_CACHE=str(cache), REMORA_LAB_MIRROR="http://127.0.0.1:9/debian"
    )

    line = _one_line(result)
    assert "debootstrap failed (is the mirror http://127.0.0.1:9/debian reachable?)" in line
    assert not list(cache.glob("base-*")) and not list(cache.glob(".building-*"))


def test_a_bad_mirror_setting_is_named():
    line = _one_line(_lab("build", REMORA_LAB_MIRROR="ftp://mirror/debian"))

    assert line.startswith("lab: REMORA_LAB_MIRROR must be an http:// URL")


def test_a_host_that_fails_to_boot_shows_its_console(lab_hosts, tmp_path):
    from lab import base, host, net
    from lab.config import LabHost

    broken = LabHost("brokenhost", 9)
    empty_base = tmp_path / "not-a-debian-tree"
    empty_base.mkdir()
    net.plug(broken)
    for layer in ("upper", "work", "root"):
        host.layers(broken)[layer].mkdir(parents=True, exist_ok=True)
    try:
        host.start(broken, empty_base, base.archives())
        with pytest.raises(host.BootFailed) as failure:
            host.wait_running(broken, timeout=20)
    finally:
        host.stop(broken)
        net.unplug(broken)
        import shutil

        shutil.rmtree(host.layers(broken)["top"], ignore_errors=True)

    assert "brokenhost did not boot: its init exited" in str(failure.value)
    assert "does not exist" in failure.value.console  # the console says what went wrong
    assert not any(d.exists() for d in host.cgroup_dirs(broken))
