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
