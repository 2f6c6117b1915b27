"""The PHP front end on the lab, through the console's own path: sunjammer gets Apache and PHP
and the stack probe (deployed from a git repository the machine serves to the lab through the
bridge), with writes and reads both to beamrider's database (Phase 1: the shadow settings point
at the master). The probe answers over HTTP from inside sunjammer; the status companion says 3
before and 0 after; a second run changes nothing; a new ref is switched in atomically under a
stream of requests; the passwords appear in neither the stored script nor the output."""

import json
import threading
import time

import pytest

from hosts.models import Host
from jobs.models import JobRun, RunState
from jobs.recipes import get
from lab import control
from lab.config import BY_NAME

from .conftest import git, output

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

DB_PASSWORD = "probe-Db-'pw'-4417"
SUNJAMMER, BEAMRIDER = BY_NAME["sunjammer"], BY_NAME["beamrider"]
APACHE_LOG = "/var/log/apache2/error.log"


def sh(host, command: str, timeout: float = 600) -> str:
    result = control.run(host, command, timeout=timeout)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def database_on_beamrider() -> None:
    """A bare MariaDB for the probe (the MariaDB recipes are tested on their own): listening on
    beamrider's service address, a remora database and a user allowed from the lab's subnet."""
    subnet = BEAMRIDER.address.rsplit(".", 1)[0] + ".%"
    password = DB_PASSWORD.replace("'", "''")
    sql = (
        "CREATE DATABASE IF NOT EXISTS remora; "
        f"CREATE USER IF NOT EXISTS 'remora'@'{subnet}' IDENTIFIED BY '{password}'; "
        f"GRANT ALL ON remora.* TO 'remora'@'{subnet}';"
    )
    sh(
        BEAMRIDER,
        "set -e; export DEBIAN_FRONTEND=noninteractive; "
        "until dpkg -s mariadb-server >/dev/null 2>&1 || apt-get install -y -q "
        "--no-install-recommends mariadb-server >/dev/null; do sleep 5; done; "  # the shared
        # apt archive may be locked by another lab's host for a while
        f"printf '[mysqld]\\nbind-address = {BEAMRIDER.address}\\n' "
        "> /etc/mysql/mariadb.conf.d/99-probe-test.cnf; "
        "systemctl restart mariadb; "
        f"mariadb -e {_shell_quote(sql)}",
    )


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def probe(path: str = "/") -> tuple[int, dict]:
    out = sh(SUNJAMMER, f"curl -s -w '\\n%{{http_code}}' http://localhost:8080{path}")
    body, code = out.rsplit("\n", 1)
    return int(code), json.loads(body)


def snapshot() -> dict[str, str]:
    """What a second run must leave as it is: the deployed commit, the configuration's checksum,
    Apache's whole configuration, and how many times Apache was (re)loaded."""
    return {
        "current": sh(SUNJAMMER, "readlink /srv/remora/current").strip(),
        "config": sh(SUNJAMMER, "sha256sum /etc/remora/config.php").split()[0],
        "config_mode": sh(SUNJAMMER, "stat -c %a:%U:%G /etc/remora/config.php").strip(),
        "apache": sh(
            SUNJAMMER,
            "cd /etc/apache2 && find . -printf '%p %l\\n' | sort | sha256sum; "
            "find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum",
        ),
        "reloads": sh(
            SUNJAMMER, "grep -c 'Graceful restart requested' /var/log/apache2/error.log || true"
        ),
    }


def test_the_front_end_serves_the_stack_probe_on_sunjammer(run_recipe, status_of, probe_repo):
    timeline: list[tuple[str, float]] = []

    def step(name: str, started: float) -> None:
        timeline.append((name, time.monotonic() - started))

    started = time.monotonic()
    database_on_beamrider()
    step("MariaDB for the probe on beamrider", started)
    params = {"repo_url": probe_repo["url"], "ref": "main", "db_password": DB_PASSWORD}

    started = time.monotonic()
    code, said = status_of("php_frontend", "sunjammer", params)
    assert code == 3, said
    assert "missing:" in said
    step("status before", started)

    started = time.monotonic()
    run = run_recipe("php_frontend", "sunjammer", params)
    step("first run", started)
    text = output(run)
    assert run.state == RunState.SUCCEEDED, f"{run.error}\n{text}"
    assert "HTTP 200 from http://localhost:8080/" in text
    main = git("rev-parse", "HEAD", cwd=probe_repo["work"])
    assert f"{main} (main) deployed" in text

    http, answer = probe()
    assert http == 200, answer
    assert answer["frontend"] == "sunjammer"
    assert answer["master_write"] is True and answer["shadow_read"] is True
    assert answer["data_dirs"] == {"/srv/remora/files": True, "/srv/remora/public-staging": True}
    config = sh(SUNJAMMER, "cat /etc/remora/config.php")
    assert f"define('DB_HOST', '{BEAMRIDER.address}');" in config
    assert f"define('SHADOW_DB_HOST', '{BEAMRIDER.address}');" in config
    assert sh(SUNJAMMER, "stat -c %U /srv/remora/files /srv/remora/public-staging").split() == [
        "www-data",
        "www-data",
    ]

    started = time.monotonic()
    code, said = status_of("php_frontend", "sunjammer", params)
    step("status after", started)
    assert code == 0, said
    assert f"php_frontend in place: {main} (main)" in said

    # The passwords reach the host only through the worker's environment.
    for secret in (DB_PASSWORD, "probe-Db"):
        assert secret not in run.script and secret not in text
        assert secret not in json.dumps(run.params)

    before = snapshot()
    started = time.monotonic()
    again = run_recipe("php_frontend", "sunjammer", params)
    step("second run (nothing to do)", started)
    assert again.state == RunState.SUCCEEDED, output(again)
    assert "already in place" in output(again)
    assert f"php_frontend: already in place ({main}, main); nothing changed" in output(again)
    assert "reloaded" not in output(again)
    assert snapshot() == before

    # A new ref: switched in atomically while sunjammer keeps answering.
    work = probe_repo["work"]
    (work / "VERSION").write_text("2\n")
    git("checkout", "-q", "-b", "next", cwd=work)
    git("add", "VERSION", cwd=work)
    git("commit", "-q", "-m", "Version 2", cwd=work)
    git("push", "-q", "served", "next", cwd=work)
    following = git("rev-parse", "HEAD", cwd=work)
    stream = _RequestStream()
    stream.start()
    try:
        started = time.monotonic()
        switched = run_recipe("php_frontend", "sunjammer", {**params, "ref": "next"})
        step("new ref (under a stream of requests)", started)
    finally:
        codes = stream.stop()
    assert switched.state == RunState.SUCCEEDED, output(switched)
    assert f"current: switched to {following} (next)" in output(switched)
    assert sh(SUNJAMMER, "readlink /srv/remora/current").strip().endswith(f"/{following}")
    assert sh(SUNJAMMER, "cat /srv/remora/current/VERSION").strip() == "2"
    assert codes and set(codes) == {"200"}, codes
    assert status_of("php_frontend", "sunjammer", {**params, "ref": "next"})[0] == 0
    assert status_of("php_frontend", "sunjammer", params)[0] == 3  # main is no longer deployed

    # A wrong password: the run fails and says why (the probe's own words), and so does the
    # status companion; the right one puts everything back.
    started = time.monotonic()
    broken = run_recipe("php_frontend", "sunjammer", {**params, "db_password": "wrong-pw-1"})
    step("a run with a wrong password (fails)", started)
    assert broken.state == RunState.FAILED
    assert "the site answered HTTP 503" in output(broken)
    assert '"failed":["master_write","shadow_read"]' in output(broken)
    code, said = status_of("php_frontend", "sunjammer", {**params, "ref": "next"})
    assert code == 3 and "HTTP 503 from http://localhost:8080/" in said, said
    fixed = run_recipe("php_frontend", "sunjammer", {**params, "ref": "next"})
    assert fixed.state == RunState.SUCCEEDED, output(fixed)
    assert probe()[0] == 200

    print(f"\nrequests during the switch: {len(codes)}, all HTTP 200")
    for name, seconds in timeline:
        print(f"  {name:<40} {seconds:6.1f} s")


class _RequestStream:
    """Requests to sunjammer's site, one after another, inside sunjammer, until stopped."""

    def __init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        sh(
            SUNJAMMER,
            "rm -f /tmp/stream.stop /tmp/stream.codes; "
            "while [ ! -e /tmp/stream.stop ]; do "
            "curl -s -o /dev/null -w '%{http_code}\\n' --max-time 10 http://localhost:8080/ "
            ">> /tmp/stream.codes; done",
            timeout=900,
        )

    def start(self) -> None:
        self.thread.start()
        time.sleep(0.5)

    def stop(self) -> list[str]:
        sh(SUNJAMMER, "touch /tmp/stream.stop")
        self.thread.join(30)
        return sh(SUNJAMMER, "cat /tmp/stream.codes").split()


@pytest.mark.parametrize(
    "field, value",
    [
        ("ref", "main branch"),
        ("files_dir", "srv/remora/files"),
        ("repo_url", "git://10.0.0.1/probe.git;reboot"),
    ],
)
def test_bad_parameters_are_refused_before_anything_is_queued(lab_inventory, field, value):
    sunjammer = Host.objects.get(name="sunjammer")
    params = {"repo_url": "git://10.0.0.1/probe.git", "db_password": DB_PASSWORD, field: value}
    form = get("php_frontend").form(params, host=sunjammer)
    assert not form.is_valid()
    assert form.errors[field]
    assert not JobRun.objects.exists()
