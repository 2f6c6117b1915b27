"""The MariaDB recipes on the lab's real Debian 12 hosts, through the console's own path:
master on beamrider, the shadow replica on remora2, backup and restore, promote.

The tests run in file order and build on each other (the hosts keep their state between them;
the console's database does not, so each test adopts the lab again). The module starts by
removing MariaDB from both hosts, so the first status is a real "missing".
"""

import re
import time

import pytest

from jobs.models import JobRun, RunState
from jobs.recipes import get
from lab.config import SUBNET

from .conftest import output

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

SECRETS = {
    "app_password": "app-Lab-Secret-4711",
    "repl_password": "repl-Lab-Secret-4712",
    "seed_password": "seed-Lab-Secret-4713",
}
TIMINGS: dict[str, float] = {}
# What a second master run must leave alone: the config file, the accounts, their grants, the
# server process (no restart).
SNAPSHOT = (
    "sha256sum /etc/mysql/mariadb.conf.d/60-remora.cnf; "
    "mariadb -N -e 'SELECT user, host FROM mysql.user ORDER BY 1, 2'; "
    f"for u in \"'remora'@'localhost'\" \"'remora_repl'@'{SUBNET}.4'\" "
    f"\"'remora_seed'@'{SUBNET}.4'\"; do mariadb -N -e \"SHOW GRANTS FOR $u\"; done; "
    "systemctl show -p MainPID mariadb"
)


def sh(host: str, command: str) -> str:
    from lab import control
    from lab.config import BY_NAME

    done = control.run(BY_NAME[host], command, timeout=300)
    assert done.returncode == 0, f"{command}: {done.stdout} {done.stderr}"
    out = done.stdout
    return (out.decode() if isinstance(out, bytes) else out or "").strip()


def timed(label: str, fn, *args):
    started = time.monotonic()
    result = fn(*args)
    TIMINGS[label] = round(time.monotonic() - started, 1)
    return result


def no_secret_in(run) -> None:
    text = output(run)
    for secret in SECRETS.values():
        assert secret not in run.script
        assert secret not in text


@pytest.fixture(scope="module", autouse=True)
def fresh_mariadb(fresh_lab):
    """No MariaDB on beamrider and remora2 (an earlier session may have left one)."""
    for host in ("beamrider", "remora2"):
        sh(
            host,
            "systemctl stop mariadb 2>/dev/null || true; "
            "installed=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\\n' 'mariadb*' "
            "galera-4 2>/dev/null | awk '$1 !~ /^u/ && $2 != \"mariadb-common\" {print $2}'); "
            # dpkg, not apt: apt would wait for the package cache that other labs share.
            'if [ -n "$installed" ]; then DEBIAN_FRONTEND=noninteractive '
            "dpkg --purge $installed >/dev/null; fi; "
            "rm -rf /var/lib/mysql /etc/mysql/mariadb.conf.d/60-remora.cnf "
            "/var/backups/remora-mariadb",
        )
    yield
    print("\nMariaDB timeline (s):", TIMINGS)


def test_master_installs_reports_its_status_and_a_second_run_changes_nothing(run_recipe, status_of):
    code, said = status_of("mariadb_master", "beamrider", SECRETS)
    assert code == 3, said
    assert "mariadb is not running" in said

    run = timed("master first run", run_recipe, "mariadb_master", "beamrider", SECRETS)
    assert run.state == RunState.SUCCEEDED, (run.error, output(run))
    first = output(run)
    assert "package mariadb-server: installed" in first
    assert f"user 'remora_repl'@'{SUBNET}.4': created" in first
    assert "restarted" not in first  # installed with its configuration already in place
    no_secret_in(run)

    code, said = status_of("mariadb_master", "beamrider", SECRETS)
    assert code == 0, said
    cnf = "/etc/mysql/mariadb.conf.d/60-remora.cnf"
    before = sh("beamrider", SNAPSHOT)
    assert f"bind_address = {SUBNET}.2" in sh("beamrider", f"cat {cnf}")
    assert f"REPLICATION SLAVE ON *.* TO `remora_repl`@`{SUBNET}.4`" in before
    assert "GRANT SELECT, INSERT, UPDATE, DELETE" in before and "ON `remora`.*" in before
    server = "SELECT @@log_bin, @@binlog_format, @@gtid_strict_mode, @@bind_address"
    assert sh("beamrider", f"mariadb -N -e '{server}'").split() == ["1", "ROW", "1", f"{SUBNET}.2"]

    again = timed("master second run", run_recipe, "mariadb_master", "beamrider", SECRETS)
    assert again.state == RunState.SUCCEEDED, (again.error, output(again))
    second = output(again)
    assert second.count("already in place") >= 8, second
    for changed in ("installed", "written", "created", "restarted", "granted", "updated"):
        assert f": {changed}" not in second, second
    after = sh("beamrider", SNAPSHOT)
    assert after == before  # same file, same accounts and grants, not even restarted
    no_secret_in(again)

    # A changed file is put back, and only then is the server restarted.
    sh("beamrider", f"echo 'max_connections = 5' >> {cnf}")
    code, said = status_of("mariadb_master", "beamrider", SECRETS)
    assert code == 3 and f"configuration {cnf} is missing or differs" in said, said
    fixed = timed("master run after a config drift", run_recipe, "mariadb_master", "beamrider",
                  SECRETS)  # fmt: skip
    assert f"config {cnf}: written" in output(fixed)
    assert "mariadb: restarted (configuration changed)" in output(fixed)
    assert status_of("mariadb_master", "beamrider", SECRETS)[0] == 0


def test_bad_parameters_are_refused_before_anything_is_queued(lab_inventory):
    from hosts.models import Host

    beamrider = Host.objects.get(name="beamrider")
    recipe = get("mariadb_master")
    for bad, field in [
        ({"database": "remora'x"}, "database"),
        ({"replica_address": f"{SUBNET}.4 x"}, "replica_address"),
        ({"port": 65536}, "port"),
    ]:
        form = recipe.form({**SECRETS, **bad}, host=beamrider)
        assert not form.is_valid() and field in form.errors
    assert not JobRun.objects.exists()


@pytest.fixture
def remora2_in_service(lab_inventory):
    """Phase 3 brings remora2 into service with its shadow replica (the planner's job)."""
    from hosts.changes import save_audited
    from hosts.models import Host, Service, ServiceKind

    remora2 = Host.objects.get(name="remora2")
    remora2.active = True
    save_audited(remora2, actor=lab_inventory["lead"])
    service = Service(host=remora2, kind=ServiceKind.MYSQL_REPLICA)
    service.settings = {"replicates_from": "beamrider"}
    save_audited(service, actor=lab_inventory["lead"])


def test_the_shadow_replica_replicates_a_row_written_on_the_master(
    remora2_in_service, run_recipe, status_of
):
    code, said = status_of("mariadb_replica", "remora2", SECRETS)
    assert code == 3, said

    # The master does not know this password: the run says which prerequisite is missing.
    wrong = {**SECRETS, "seed_password": "not-the-Seed-password-1"}
    refused = timed("replica run refused (install, no seed)", run_recipe, "mariadb_replica",
                    "remora2", wrong)  # fmt: skip
    assert refused.state == RunState.FAILED
    assert f"prerequisite missing: the master {SUBNET}.2:3306 does not let remora_seed in" in (
        output(refused)
    )
    assert "not-the-Seed-password-1" not in output(refused) + refused.script

    first = "replica first run (install + seed)"
    run = timed(first, run_recipe, "mariadb_replica", "remora2", SECRETS)
    assert run.state == RunState.SUCCEEDED, (run.error, output(run))
    assert f"seeding remora from {SUBNET}.2:3306" in output(run)
    assert "package mariadb-server: already in place" in output(run)  # from the refused run
    no_secret_in(run)

    write = (
        "CREATE TABLE IF NOT EXISTS remora.probe (id INT PRIMARY KEY, note VARCHAR(40)); "
        "REPLACE INTO remora.probe VALUES (1, 'written on the master')"
    )
    sh("beamrider", f'mariadb -e "{write}"')
    started = time.monotonic()
    row = ""
    while time.monotonic() - started < 30 and "written on the master" not in row:
        query = "SELECT note FROM remora.probe WHERE id = 1"
        row = sh("remora2", f"mariadb -N -e '{query}' 2>/dev/null || true")
        time.sleep(0.2)
    TIMINGS["row visible on the replica"] = round(time.monotonic() - started, 2)
    assert row == "written on the master"

    code, said = status_of("mariadb_replica", "remora2", SECRETS)
    assert code == 0, said
    assert re.search(r"lag: \d+ s", said), said
    assert sh("remora2", "mariadb -N -e 'SELECT @@read_only'") == "1"

    again = timed("replica second run", run_recipe, "mariadb_replica", "remora2", SECRETS)
    assert again.state == RunState.SUCCEEDED, (again.error, output(again))
    assert "replication: already in place" in output(again)
    assert "seeding" not in output(again) and "restarted" not in output(again)


def test_backup_is_a_gzip_with_the_reported_sha256_and_restore_brings_back_a_table(
    run_recipe,
):
    run = timed("backup", run_recipe, "mariadb_backup", "beamrider", {"keep": 2})
    assert run.state == RunState.SUCCEEDED, (run.error, output(run))
    said = output(run)
    name = re.search(r"backup: (remora-\S+\.sql\.gz)", said).group(1)
    sha = re.search(r"sha256: ([0-9a-f]{64})", said).group(1)
    size = int(re.search(r"size: (\d+) bytes", said).group(1))
    path = f"/var/backups/remora-mariadb/{name}"
    assert sh("beamrider", f"sha256sum {path}").split()[0] == sha
    assert int(sh("beamrider", f"stat -c %s {path}")) == size
    sh("beamrider", f"gzip -t {path}")
    assert "written on the master" in sh("beamrider", f"gunzip -c {path}")

    for _ in range(2):  # rotation keeps 2
        time.sleep(1.1)
        assert run_recipe("mariadb_backup", "beamrider", {"keep": 2}).state == RunState.SUCCEEDED
    assert sh("beamrider", "ls /var/backups/remora-mariadb | wc -l") == "2"
    latest = sh("beamrider", "ls /var/backups/remora-mariadb | sort | tail -1")

    sh("beamrider", "mariadb -e 'DROP TABLE remora.probe'")
    restore = timed("restore", run_recipe, "mariadb_restore", "beamrider", {"backup": latest})
    assert restore.state == RunState.SUCCEEDED, (restore.error, output(restore))
    assert sh("beamrider", "mariadb -N -e 'SELECT note FROM remora.probe'") == (
        "written on the master"
    )


def test_promote_makes_the_replica_writable_and_stops_replication(
    remora2_in_service, run_recipe, status_of
):
    code, said = status_of("mariadb_promote", "remora2")
    assert code == 3, said

    run = timed("promote", run_recipe, "mariadb_promote", "remora2")
    assert run.state == RunState.SUCCEEDED, (run.error, output(run))
    assert sh("remora2", "mariadb -N -e 'SHOW SLAVE STATUS'") == ""
    assert sh("remora2", "mariadb -N -e 'SELECT @@read_only'") == "0"
    sh("remora2", "mariadb -e \"INSERT INTO remora.probe VALUES (2, 'written on remora2')\"")
    code, said = status_of("mariadb_promote", "remora2")
    assert code == 0, said
    again = run_recipe("mariadb_promote", "remora2")
    assert "already in place" in output(again)
    # Seeding again over the promoted server's data is refused, in words.
    refused = run_recipe("mariadb_replica", "remora2", SECRETS)
    assert refused.state == RunState.FAILED
    assert "refusing to seed over it" in output(refused)
