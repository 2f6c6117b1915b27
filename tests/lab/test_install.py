"""The console installed on a fresh Debian 12 server exactly as the README says ("Install on a
server"): the bundle `make dist` builds here (deploy/build-bundle.sh) is copied over SSH to a
fresh lab host that reaches nothing but the Debian mirror, `deploy/install.sh` installs it
(MariaDB and Redis from apt, the bundled Python, the venv from the wheelhouse, the systemd
units), then `remora-admin createsuperuser` and `remora-admin load_topology`.

Then, through a loopback relay to its web port (the machine gets no lab address): a delegate
signs in over HTTP, as the front proxy would pass it on (X-Forwarded-Proto: https), and
launches Host health on sunjammer, another lab host, from that console; it runs there. The
console host reboots: the web server, the workers and the ticker come back by themselves, the
run is still there, no run is lost, and a new run works."""

import json
import re
import shlex
import subprocess
import time

import pytest

from lab import base, control, host, net
from lab.config import BY_NAME, CONSOLE, SSH_PORT, SUBNET, WORKER
from tests.fixtures.lab import ensure_lab_tools
from tests.fixtures.lab_install import (
    PASSWORD,
    SERVER_NAME,
    Browser,
    Server,
    boot_fresh,
    build_bundle,
    launch_host_health,
    run_state,
    sign_in,
    throw_away,
    units_active,
    wait_for_run,
    wait_for_web,
)
from tests.fixtures.services import ensure_debian_package

pytestmark = pytest.mark.lab

WEB_PORT = 8000
LEAD, DELEGATE = "lead", "dana"
UNITS = ("remora-web", "remora-ticker", "remora-worker@1", "remora-worker@2")
# A sunjammer operator (no second factor needed there), as an admin would grant it.
MAKE_DELEGATE = f"""
from django.contrib.auth import get_user_model
from django.db import transaction
from remora_admin.access.grants import grant_details
from remora_admin.access.models import Grant, Role, Zone
from remora_admin.audit.log import record

User = get_user_model()
lead = User.objects.get(username={LEAD!r})
with transaction.atomic():
    user = User.objects.create_user({DELEGATE!r}, password={PASSWORD!r})
    grant = Grant.objects.create(
        user=user, role=Role.OPERATOR, zone=Zone.objects.get(name="sunjammer"),
        reason="install test: a community delegate",
    )
    record("grant.created", actor=lead, target=grant, details=grant_details(grant))
"""
RUNS = """
import json
from jobs.models import JobRun
print(json.dumps(list(JobRun.objects.order_by("pk").values_list("pk", "state"))))
"""


# --- The installed console --------------------------------------------------------------------


def reboot_console() -> float:
    started = time.monotonic()
    host.stop(CONSOLE)
    assert host.state(CONSOLE) == "stopped"
    host.start(CONSOLE, base.base_dir(), base.archives())
    host.wait_running(CONSOLE, timeout=120)  # "running": no failed unit
    return time.monotonic() - started


@pytest.fixture(scope="module")
def installed(lab_hosts, tmp_path_factory):
    ensure_lab_tools()
    ensure_debian_package("/usr/bin/ssh", "openssh-client")
    timings: dict[str, float | None] = {}
    state = control.write_state()  # the hosts' current keys (an earlier module may reset them)
    key, public = control.console_key()
    scratch = tmp_path_factory.mktemp("install")
    started = time.monotonic()
    try:
        tarball, timings["bundle_build_s"] = build_bundle()
        t = time.monotonic()
        timings["console_boot_s"] = boot_fresh(CONSOLE, public)
        known_hosts = scratch / "known_hosts"
        known_hosts.write_text(f"{CONSOLE.relay_address} {control.host_key(CONSOLE)}\n")
        server = Server(key, known_hosts)

        # The README's steps, as the admin runs them.
        t = time.monotonic()
        server.scp(tarball, "/tmp/")
        timings["copy_s"] = time.monotonic() - t
        name = tarball.name.removesuffix(".tar.gz")
        t = time.monotonic()
        server.ssh(
            f"cd /tmp && tar xzf {shlex.quote(tarball.name)} && sudo "
            + shlex.join(
                [
                    f"./{name}/deploy/install.sh",
                    "--server-name",
                    SERVER_NAME,
                    # The lab has no front proxy: gunicorn listens on the lab address, which
                    # only the relay below reaches.
                    "--set",
                    f"REMORA_WEB_BIND={CONSOLE.address}:{WEB_PORT}",
                    "--set",
                    "WEB_CONCURRENCY=2",
                ]
            ),  # fmt: skip
            timeout=1200,
        )
        timings["install_s"] = time.monotonic() - t
        server.ssh(
            "sudo env DJANGO_SUPERUSER_PASSWORD="
            + shlex.quote(PASSWORD)
            + " remora-admin createsuperuser --noinput --username "
            + shlex.quote(LEAD)
            + " --email lead@example.org"
        )
        server.manage("load_topology")

        # The inventory: the lab's hosts at their lab addresses (the console sits on the lab's
        # network), the lab's key, each host key pinned once the host presents it.
        entries = [
            {**entry, "ssh_address": entry["service_address"], "ssh_port": SSH_PORT}
            for entry in state["hosts"]
        ]
        remote = "/var/lib/remora/lab-adopt"
        server.ssh(f"sudo install -d -o remora -g remora -m 0700 {remote}")
        server.ssh(
            f"sudo install -o remora -g remora -m 0600 /dev/stdin {remote}/key",
            stdin=key.read_bytes(),
        )
        adopt = {"private_key_path": f"{remote}/key", "hosts": entries}
        server.ssh(
            f"sudo install -o remora -g remora -m 0600 /dev/stdin {remote}/state.json",
            stdin=json.dumps(adopt).encode(),
        )
        adopted = server.manage("lab_adopt", f"{remote}/state.json", "--as", LEAD)
        server.ssh(f"sudo rm -rf {remote}")
        server.manage("shell", "--no-imports", "-c", MAKE_DELEGATE)

        relay = net.start_host_relay(CONSOLE, WEB_PORT, "http")
        timings["total_setup_s"] = time.monotonic() - started
        yield {
            "tarball": tarball,
            "server": server,
            "key": key,
            "scratch": scratch,
            "relay": relay,
            "adopted": adopted,
            "timings": timings,
            "sunjammer": next(e for e in state["hosts"] if e["name"] == "sunjammer"),
        }
    finally:
        net.stop_host_relay(CONSOLE, "http")
        throw_away(CONSOLE)


@pytest.fixture(scope="module")
def browser(installed):
    address, port = installed["relay"].rsplit(":", 1)
    client = Browser(address, int(port))
    wait_for_web(client)
    sign_in(client, DELEGATE)
    return client


def test_the_install_runs_the_console_under_systemd_as_remora(installed, capsys):
    assert host.state(CONSOLE) == "running"  # no failed unit
    assert units_active(CONSOLE, UNITS) == dict.fromkeys(UNITS, "active")
    for unit in (*UNITS, "mariadb", "redis-server"):
        enabled = control.run(CONSOLE, f"systemctl is-enabled {unit}").stdout.strip()
        assert enabled == "enabled", unit
    users = control.run(CONSOLE, "ps -o user= -C gunicorn -C python").stdout.split()
    assert users and set(users) == {"remora"}
    python = control.run(CONSOLE, "/opt/remora/venv/bin/python -c 'import sys; print(sys.version)'")
    assert python.stdout.startswith(("3.12", "3.13", "3.14")), python.stdout + python.stderr
    assert control.run(CONSOLE, "python3 -V").stdout.startswith("Python 3.11")  # Debian's own
    verify = control.run(CONSOLE, "systemd-analyze verify /etc/systemd/system/remora-*.service")
    assert verify.returncode == 0 and not verify.stdout.strip(), verify.stdout + verify.stderr
    env_mode = control.run(CONSOLE, "stat -c '%U:%G %a' /etc/remora/remora.env").stdout
    assert env_mode.strip() == "root:remora 640"
    assert installed["adopted"].count("key pinned") == 3
    with capsys.disabled():
        print(
            "\ninstall: "
            + ", ".join(
                f"{k} {v:.1f}" if v is not None else f"{k} cached"
                for k, v in installed["timings"].items()
            )
        )


def test_static_files_are_served_hashed_and_compressed_by_whitenoise(installed, browser):
    status, _, page = browser.get("/")  # the dashboard (signed in: /login/ sends here)
    assert status == 200
    css = re.search(r'href="(/static/remora\.[0-9a-f]{12}\.css)"', page)
    assert css, "the page links the hashed name collectstatic made"

    status, headers, body = browser.get(css.group(1))

    assert status == 200 and headers["Content-Type"].startswith("text/css")
    assert "max-age=315360000" in headers.get("Cache-Control", "")  # immutable: hashed name
    assert len(body) > 1000


def test_a_delegate_signs_in_and_runs_host_health_on_sunjammer(installed, browser):
    pk = launch_host_health(browser)

    state, page = wait_for_run(browser, pk)

    assert state == "succeeded", re.sub(r"\s+", " ", page)[-3000:]
    assert "== sunjammer at " in page  # its output came from the lab's sunjammer
    installed["first_run"] = pk


def test_after_a_reboot_everything_is_back_and_no_run_is_lost(installed, browser, capsys):
    first = installed["first_run"]
    server = installed["server"]

    rebooted = reboot_console()
    states = units_active(CONSOLE, UNITS)
    back = time.monotonic()
    wait_for_web(browser)
    web_after_boot = time.monotonic() - back

    assert states == dict.fromkeys(UNITS, "active")
    assert run_state(browser, first)[0] == "succeeded"  # the run and the session survived
    second = launch_host_health(browser)
    state, page = wait_for_run(browser, second)
    assert state == "succeeded", re.sub(r"\s+", " ", page)[-3000:]
    runs = json.loads(server.manage("shell", "--no-imports", "-c", RUNS))
    assert runs == [[first, "succeeded"], [second, "succeeded"]]  # none lost, none doubled
    restarts = control.run(CONSOLE, "systemctl show -p NRestarts --value " + " ".join(UNITS))
    with capsys.disabled():
        print(
            f"\ninstall: console rebooted in {rebooted:.1f} s, "
            f"web answering {web_after_boot:.1f} s later; restarts after the boot: "
            + ", ".join(f"{u} {n}" for u, n in zip(UNITS, restarts.stdout.split(), strict=False))
        )


def test_running_the_installer_again_upgrades_in_place_keeping_settings_and_data(
    installed, browser
):
    server = installed["server"]
    settings_before = control.run(CONSOLE, "sha256sum /etc/remora/remora.env").stdout
    runs_before = json.loads(server.manage("shell", "--no-imports", "-c", RUNS))

    tarball = installed["tarball"]  # copied again: the reboot emptied /tmp
    server.scp(tarball, "/tmp/")
    name = tarball.name.removesuffix(".tar.gz")
    upgrade = f"./{name}/deploy/install.sh --no-apt"
    server.ssh(f"cd /tmp && tar xzf {shlex.quote(tarball.name)} && sudo {upgrade}", timeout=900)

    assert units_active(CONSOLE, UNITS) == dict.fromkeys(UNITS, "active")
    assert control.run(CONSOLE, "sha256sum /etc/remora/remora.env").stdout == settings_before
    assert json.loads(server.manage("shell", "--no-imports", "-c", RUNS)) == runs_before
    wait_for_web(browser)
    assert run_state(browser, runs_before[-1][0])[0] == "succeeded"  # still signed in


# --- A second machine's workers ----------------------------------------------------------------

LAUNCH_SLEEPER = f"""
from django.contrib.auth import get_user_model
from hosts.models import Host
from jobs.launch import launch
from jobs.recipes import get

lead = get_user_model().objects.get(username={LEAD!r})
[run] = launch(lead, get("adhoc"), [Host.objects.get(name="sunjammer")],
               {{"command": "echo started; sleep 600", "changes_host": False}})
print(run.pk)
"""
WORKERS_OF = """
import json, sys
from jobs.models import JobRun
pks = json.loads(sys.stdin.read())
print(json.dumps(dict(JobRun.objects.filter(pk__in=pks).values_list("pk", "worker"))))
"""
RUN_OF = """
import json, sys
from jobs.models import JobRun
run = JobRun.objects.get(pk=int(sys.stdin.read()))
print(json.dumps({"state": run.state, "worker": run.worker, "error": run.error}))
"""


def unpacked(server: Server, tarball) -> str:
    """The bundle unpacked in /tmp on that server (copied first when it is not there)."""
    name = tarball.name.removesuffix(".tar.gz")
    if not server.succeeds(f"test -x /tmp/{name}/deploy/install.sh"):
        server.scp(tarball, "/tmp/")
        server.ssh(f"cd /tmp && tar xzf {shlex.quote(tarball.name)}")
    return f"/tmp/{name}"


def shell(server: Server, code: str, stdin: str = "") -> str:
    return server.ssh("sudo remora-admin shell --no-imports -c " + shlex.quote(code),
                      stdin=stdin.encode())  # fmt: skip


def power_off(machine) -> None:
    """Pull the plug: every process of the host killed at once, nothing told to stop."""
    for directory in host.cgroup_dirs(machine):
        host._kill_all(directory)
    host.stop(machine)


@pytest.fixture(scope="module")
def worker_machine(installed):
    """The README's "Workers on more machines": the console's installer opens MariaDB and Redis
    to the lab's network; a fresh machine gets the bundle and the console's worker.env, and its
    installer runs one worker there."""
    console = installed["server"]
    bundle = unpacked(console, installed["tarball"])
    console.ssh(f"sudo {bundle}/deploy/install.sh --no-apt --allow-workers-from {SUBNET}.0/24",
                timeout=600)  # fmt: skip
    worker_env = console.ssh("sudo cat /etc/remora/worker.env")
    try:
        _, public = control.console_key()
        boot_fresh(WORKER, public)
        known_hosts = installed["scratch"] / "known_hosts_worker"
        known_hosts.write_text(f"{WORKER.relay_address} {control.host_key(WORKER)}\n")
        server = Server(installed["key"], known_hosts, WORKER)
        server.ssh("umask 077 && cat > /tmp/worker.env", stdin=worker_env.encode())
        bundle = unpacked(server, installed["tarball"])
        installer = f"{bundle}/deploy/install.sh --worker-only --env-file /tmp/worker.env"
        output = server.ssh(f"sudo {installer} --workers 1 && rm /tmp/worker.env", timeout=900)
        yield {"server": server, "output": output, "worker_env": worker_env}
    finally:
        throw_away(WORKER)


def test_the_console_opens_mariadb_and_redis_to_workers_with_a_password(installed, worker_machine):
    env = worker_machine["worker_env"]
    database = re.search(r"^DATABASE_URL=mysql://remora:\w+@([\d.]+):3306/remora$", env, re.M)
    redis = re.search(r"^REDIS_URL=redis://:(\w+)@([\d.]+):6379/0$", env, re.M)
    assert database and redis, env
    assert database.group(1) == redis.group(2) == CONSOLE.address
    assert "REMORA_AUDIT_SINK=none" in env  # the console alone writes the copy off the box
    # Redis asks for the password from the workers' network; MariaDB lets no other user in.
    ping = (
        f"exec 3<>/dev/tcp/{CONSOLE.address}/6379; printf 'PING\\r\\n' >&3; "
        "read -r line <&3; echo $line"
    )
    probe = control.run(WORKER, "timeout 10 bash -c " + shlex.quote(ping))
    assert probe.stdout.startswith("-NOAUTH"), probe.stdout + probe.stderr
    grants = control.run(CONSOLE, "mariadb -N -e \"SHOW GRANTS FOR 'remora'@'"
                         f"{SUBNET}.0/255.255.255.0'\"").stdout  # fmt: skip
    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON `remora`.*" in grants, grants
    assert "ALL PRIVILEGES" not in grants


def test_a_second_machine_runs_workers_only(worker_machine):
    assert units_active(WORKER, ("remora-worker@1",)) == {"remora-worker@1": "active"}
    for absent in ("remora-web", "remora-ticker", "mariadb", "redis-server"):
        found = control.run(WORKER, f"systemctl list-unit-files --no-legend {absent}.service")
        assert found.stdout.strip() == "", absent
    assert control.run(WORKER, "systemctl is-enabled remora-worker@1").stdout.strip() == "enabled"
    assert control.run(WORKER, "stat -c '%U:%G %a' /etc/remora/remora.env").stdout.strip() == (
        "root:remora 640"
    )


def test_runs_spread_across_both_machines(installed, worker_machine, browser):
    server = installed["server"]
    launched: list[int] = []
    machines: set[str] = set()
    while len(launched) < 12 and machines != {CONSOLE.name, WORKER.name}:
        batch = [launch_host_health(browser) for _ in range(3)]
        for pk in batch:
            state, page = wait_for_run(browser, pk)
            assert state == "succeeded", re.sub(r"\s+", " ", page)[-3000:]
        launched += batch
        workers = json.loads(shell(server, WORKERS_OF, json.dumps(launched)))
        machines = {w.split(":")[0] for w in workers.values()}

    assert machines == {CONSOLE.name, WORKER.name}, workers


def test_a_worker_machine_powered_off_mid_run_leaves_its_run_lost_and_the_rest_goes_on(
    installed, worker_machine, browser, capsys
):
    server = installed["server"]
    console_workers = "remora-worker@1 remora-worker@2"
    # Only the worker machine takes the next run: a command that runs for ten minutes.
    server.ssh(f"sudo systemctl stop {console_workers}")
    try:
        pk = int(shell(server, LAUNCH_SLEEPER).strip())
        deadline = time.monotonic() + 60
        while (run := json.loads(shell(server, RUN_OF, str(pk))))["state"] != "running":
            assert time.monotonic() < deadline, run
            time.sleep(0.5)
        assert run["worker"].startswith(f"{WORKER.name}:"), run
        deadline = time.monotonic() + 30
        while "started" not in run_state(browser, pk)[1]:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    finally:
        server.ssh(f"sudo systemctl start {console_workers}")

    power_off(WORKER)
    off = time.monotonic()

    # The console's own workers go on: a new run succeeds there meanwhile.
    other = launch_host_health(browser)
    state, page = wait_for_run(browser, other)
    assert state == "succeeded", re.sub(r"\s+", " ", page)[-3000:]
    assert json.loads(shell(server, RUN_OF, str(other)))["worker"].startswith(f"{CONSOLE.name}:")
    # The ticker's reaper: no heartbeat for REMORA_RUN_HEARTBEAT_TIMEOUT (30 s) means lost.
    deadline = time.monotonic() + 120
    while (run := json.loads(shell(server, RUN_OF, str(pk))))["state"] == "running":
        assert time.monotonic() < deadline, run
        time.sleep(1)
    assert run["state"] == "lost", run
    assert "the worker stopped reporting" in run["error"]
    with capsys.disabled():
        print(f"\nworkers: the powered-off machine's run marked lost {time.monotonic() - off:.0f} s"
              " after the power went")  # fmt: skip


def test_the_machine_got_no_lab_address_or_route(installed):
    addresses = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    subnet = CONSOLE.address.rsplit(".", 1)[0] + "."

    assert subnet not in addresses and subnet not in routes
    assert BY_NAME["sunjammer"].address.startswith(subnet)
