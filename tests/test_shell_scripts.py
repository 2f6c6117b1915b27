"""Every shell script the project ships passes shellcheck (the lab's boot script; the recipes'
scripts are checked as they render, in tests/recipes)."""

import subprocess
from pathlib import Path

from tests.fixtures.services import ensure_debian_package

ROOT = Path(__file__).resolve().parent.parent


def test_every_shell_script_passes_shellcheck():
    ensure_debian_package("/usr/bin/shellcheck", "shellcheck")
    scripts = sorted(p for p in ROOT.glob("**/*.sh") if ".venv" not in p.parts)

    assert ROOT / "lab/boot.sh" in scripts
    result = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_commands_the_worker_sends_to_hosts_pass_shellcheck(tmp_path):
    """The wrapper around every run (the host-side lock, the mark, the exit status record) and
    the ways runs are killed and asked about, as POSIX sh (the SSH user's shell may be dash)."""
    from jobs import ssh

    ensure_debian_package("/usr/bin/shellcheck", "shellcheck")
    commands = {
        "plain": ssh.remote_command(60, False),
        "dry-run": ssh.remote_command(60, True, True, "remora-1-abcdef12", "beamrider"),
        "marked": ssh.remote_command(60, False, False, "remora-1-abcdef12"),
        "locked-as-root": ssh.remote_command(60, False, True, "remora-1-abcdef12", "db1.lab"),
        "kill-marked": ssh._kill_marked("remora-1-abcdef12"),
    }
    for name, command in commands.items():
        (tmp_path / f"{name}.sh").write_text(command + "\n")
    scripts = sorted(str(p) for p in tmp_path.glob("*.sh"))
    result = subprocess.run(["shellcheck", "-s", "sh", *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    for bad in ("x; rm -rf /", "$(id)", "a b", "-" * 65):
        try:
            ssh.remote_command(60, False, False, bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was taken as a run's mark")
