"""What every rendered recipe script must pass: `bash -n` and shellcheck."""

import subprocess

from tests.fixtures.services import ensure_debian_package


def check_script(script: str) -> None:
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    ensure_debian_package("/usr/bin/shellcheck", "shellcheck")
    checked = subprocess.run(
        ["shellcheck", "-s", "bash", "-"], input=script, text=True, capture_output=True
    )
    assert checked.returncode == 0, checked.stdout + script
