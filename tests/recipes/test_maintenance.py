"""Maintenance on the lab: the disk-usage check passes at 99 % and fails at 1 % naming the
filesystems over it; security upgrades install only Debian security updates, say what they
upgraded and whether a reboot is required, and change nothing the second time."""

import re
import subprocess

import pytest

from hosts.models import Host
from jobs.models import RunState
from jobs.recipes import get, render_status

from .conftest import output
from .test_perlbal import lab_run

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def test_maintenance_recipes_render_and_pass_shellcheck(lab_inventory):
    host = Host.objects.get(name="sunjammer")
    for name, params in (("security_upgrades", {}), ("disk_usage", {"threshold": 90})):
        recipe = get(name)
        form = recipe.form(params, host=host)
        assert form.is_valid(), form.errors
        for script in filter(
            None, [recipe.render(form.cleaned_data), render_status(recipe, form.cleaned_data)]
        ):
            for check in (["bash", "-n"], ["shellcheck", "-s", "bash", "-"]):
                done = subprocess.run(check, input=script, text=True, capture_output=True)
                assert done.returncode == 0, (name, check, done.stdout, done.stderr)
    assert get("security_upgrades").as_root and get("security_upgrades").changes_host


@pytest.mark.parametrize("threshold", [0, 100, -5, "ninety"])
def test_a_threshold_outside_1_to_99_is_refused(lab_inventory, threshold):
    form = get("disk_usage").form({"threshold": threshold}, host=Host.objects.get(name="sunjammer"))
    assert not form.is_valid()
    assert "threshold" in form.errors


def test_disk_usage_passes_at_99_and_fails_at_1_naming_the_filesystems(run_recipe):
    ok = run_recipe("disk_usage", "sunjammer", {"threshold": 99})
    assert ok.state == RunState.SUCCEEDED, output(ok)
    assert "every filesystem is at or under 99%" in output(ok)

    over = run_recipe("disk_usage", "sunjammer", {"threshold": 1})
    assert over.state == RunState.FAILED
    said = output(over)
    assert "over 1%:" in said
    assert re.search(r"^  /: \d+% of its space used$", said, re.M), said
    print(f"\n{said}")


def test_security_upgrades_report_what_they_did_and_the_reboot(run_recipe):
    lab_run("sunjammer", "rm -f /var/run/reboot-required /var/run/reboot-required.pkgs")
    first = run_recipe("security_upgrades", "sunjammer")
    assert first.state == RunState.SUCCEEDED, (first.error, output(first))
    said = output(first)
    assert "reboot required: no" in said
    upgraded = re.findall(r"^  (\S+) (\S+) -> (\S+)$", said, re.M)
    print(f"\nsecurity upgrades on sunjammer: {len(upgraded)} package(s) upgraded")
    assert upgraded or "no security update is pending" in said
    # Only security updates: nothing else pending was touched.
    pending = lab_run(
        "sunjammer", "apt-get -s dist-upgrade | awk '/^Inst / && /-security|Debian-Security/'"
    )
    assert pending.stdout.strip() == ""

    # A package asked for a reboot (as Debian's kernel and libc do): the report says so.
    lab_run(
        "sunjammer",
        "echo '*** System restart required ***' > /var/run/reboot-required && "
        "echo libc6 > /var/run/reboot-required.pkgs",
    )
    second = run_recipe("security_upgrades", "sunjammer")
    assert second.state == RunState.SUCCEEDED, output(second)
    assert "no security update is pending: already in place" in output(second)
    assert "reboot required: yes" in output(second)
    assert "because of: libc6" in output(second)
    lab_run("sunjammer", "rm -f /var/run/reboot-required /var/run/reboot-required.pkgs")
