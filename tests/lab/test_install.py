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

import hashlib
import http.client
import json
import re
import shlex
import shutil
import subprocess
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest

from lab import base, control, host, net
from lab.config import BY_NAME, CACHE, CONSOLE, DEPLOY_USER, SSH_PORT
from tests.fixtures.lab import ensure_lab_tools
from tests.fixtures.services import ensure_debian_package

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
SERVER_NAME = CONSOLE.name  # what the console answers to (ALLOWED_HOSTS, the Host header)
WEB_PORT = 8000
LEAD, DELEGATE = "lead", "dana"
PASSWORD = "install-test-pw-2026"  # noqa: S105 (a lab host's throwaway account)
UNITS = ("remora-web", "remora-ticker", "remora-worker@1", "remora-worker@2")
FINISHED = {"succeeded", "failed", "cancelled", "timed_out", "lost", "rejected"}
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


# --- The bundle: built here, once per content of the tree -------------------------------------


def _tree_hash() -> str:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    digest = hashlib.sha256()
    # Everything the bundle may carry; the tests and benchmarks are not in it.
    names = [p for p in listed.decode().split("\0") if p and not p.startswith(("tests/", "bench/"))]
    for name in sorted(names):
        path = ROOT / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build_bundle() -> tuple[Path, float | None]:
    """`make dist`'s bundle (its tarball) and the seconds the build took (None: cached)."""
    ensure_debian_package("/usr/bin/patchelf", "patchelf")
    ensure_debian_package("/usr/bin/git", "git")
    bundles = CACHE / "bundles"
    target = bundles / _tree_hash()
    if not (target / ".complete").exists():
        shutil.rmtree(bundles, ignore_errors=True)  # one bundle kept: the current tree's
        target.mkdir(parents=True)
        started = time.monotonic()
        built = subprocess.run(
            [str(ROOT / "deploy/build-bundle.sh"), "--out", str(target)],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert built.returncode == 0, built.stdout + built.stderr
        (target / ".complete").touch()
        seconds = time.monotonic() - started
    else:
        seconds = None
    [tarball] = target.glob("remora-admin-*.tar.gz")
    return tarball, seconds


# --- SSH to the console host, as an admin would -----------------------------------------------


class Server:
    """The console host reached over its SSH relay with the lab's key and its pinned host key,
    as the deploy account (passwordless sudo), with the machine's OpenSSH client."""

    def __init__(self, key: Path, known_hosts: Path):
        self.options = [
            "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "ConnectTimeout=10",
        ]  # fmt: skip
        self.login = f"{DEPLOY_USER}@{CONSOLE.relay_address}"

    def ssh(self, command: str, timeout: float = 900, stdin: bytes | None = None) -> str:
        result = subprocess.run(
            ["ssh", *self.options, self.login, command],
            input=stdin,
            capture_output=True,
            timeout=timeout,
        )
        output = (result.stdout + result.stderr).decode(errors="replace")
        assert result.returncode == 0, f"{command}\n{output}"
        return result.stdout.decode(errors="replace")

    def scp(self, source: Path, destination: str) -> None:
        result = subprocess.run(
            ["scp", "-q", *self.options, str(source), f"{self.login}:{destination}"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr

    def manage(self, *args: str, timeout: float = 300) -> str:
        """`sudo remora-admin ...`: the console's manage.py, as the README has it run."""
        return self.ssh("sudo remora-admin " + shlex.join(args), timeout=timeout)


# --- A browser's worth of HTTP, through the relay ---------------------------------------------


class Browser:
    """Plain HTTP to the relay, as the TLS front proxy would pass requests on: the Host the
    console answers to and X-Forwarded-Proto: https (so its cookies are Secure, and kept)."""

    def __init__(self, address: str, port: int):
        self.address, self.port = address, port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None, referer: str = "/"):
        headers = {"Host": SERVER_NAME, "X-Forwarded-Proto": "https"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            form = {"csrfmiddlewaretoken": self.cookies.get("csrftoken", ""), **form}
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = f"https://{SERVER_NAME}"
            headers["Referer"] = f"https://{SERVER_NAME}{referer}"
        connection = http.client.HTTPConnection(self.address, self.port, timeout=30)
        try:
            connection.request(method, path, body, headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie()
            cookie.load(header)
            for name, morsel in cookie.items():
                self.cookies[name] = morsel.value
        return response.status, response.headers, data.decode(errors="replace")

    def get(self, path: str):
        return self.request("GET", path)

    def post(self, path: str, form: dict, referer: str):
        return self.request("POST", path, form, referer)


def wait_for_web(browser: Browser, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if browser.get("/login/")[0] in (200, 302):  # 302: signed in already
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, "the console's web server did not answer"
        time.sleep(0.5)


def sign_in(browser: Browser, username: str) -> None:
    status, _, page = browser.get("/login/")
    assert status == 200 and 'name="csrfmiddlewaretoken"' in page
    status, headers, page = browser.post(
        "/login/", {"username": username, "password": PASSWORD}, referer="/login/"
    )
    assert status == 302, page[-2000:]
    assert headers["Location"] in ("/", "https://console/"), headers["Location"]


def launch_host_health(browser: Browser) -> int:
    page = "/hosts/sunjammer/launch/?recipe=host_health"
    status, _, text = browser.get(page)
    assert status == 200, text[-2000:]
    status, headers, text = browser.post(
        "/hosts/sunjammer/launch/", {"recipe": "host_health", "launch": "Launch"}, referer=page
    )
    assert status == 302, re.sub(r"\s+", " ", text)[-3000:]
    match = re.fullmatch(r"/runs/(\d+)/", headers["Location"])
    assert match, headers["Location"]
    return int(match.group(1))


def run_state(browser: Browser, pk: int) -> tuple[str, str]:
    status, _, page = browser.get(f"/runs/{pk}/")
    assert status == 200, page[-2000:]
    match = re.search(r'class="run-state run-(\w+)" id="run-state"', page)
    assert match, page[-2000:]
    return match.group(1), page


def wait_for_run(browser: Browser, pk: int, seconds: float = 120) -> tuple[str, str]:
    deadline = time.monotonic() + seconds
    while True:
        state, page = run_state(browser, pk)
        if state in FINISHED or time.monotonic() > deadline:
            return state, page
        time.sleep(0.5)


# --- The installed console --------------------------------------------------------------------


def boot_fresh_console(public_key: str) -> float:
    """A new server: its own layer thrown away, then booted from the base like the others."""
    base_path, _ = base.build(lambda *_: None)
    host.stop(CONSOLE)
    shutil.rmtree(host.layers(CONSOLE)["top"], ignore_errors=True)
    net.plug(CONSOLE)
    host.prepare(CONSOLE, base_path, public_key)
    hosts_file = host.layers(CONSOLE)["upper"] / "etc/hosts"
    hosts_file.write_text(hosts_file.read_text() + f"{CONSOLE.address} {CONSOLE.name}\n")
    # Lab only: its hosts are chrooted, and the kernel refuses a new user namespace to a
    # chrooted process, so a unit with PrivateUsers= fails there with 217/USER (Debian's
    # redis-server.service has it). On a real server the package works as shipped.
    drop_in = host.layers(CONSOLE)["upper"] / "etc/systemd/system/redis-server.service.d"
    drop_in.mkdir(parents=True, exist_ok=True)
    (drop_in / "lab-no-user-namespace.conf").write_text("[Service]\nPrivateUsers=no\n")
    host.start(CONSOLE, base_path, base.archives())
    seconds = host.wait_running(CONSOLE)
    net.start_ssh_relay(CONSOLE)
    return seconds


def reboot_console() -> float:
    started = time.monotonic()
    host.stop(CONSOLE)
    assert host.state(CONSOLE) == "stopped"
    host.start(CONSOLE, base.base_dir(), base.archives())
    host.wait_running(CONSOLE, timeout=120)  # "running": no failed unit
    return time.monotonic() - started


def units_active(seconds: float = 60) -> dict[str, str]:
    deadline = time.monotonic() + seconds
    while True:
        states = control.run(CONSOLE, "systemctl is-active " + " ".join(UNITS)).stdout.split()
        if states == ["active"] * len(UNITS) or time.monotonic() > deadline:
            return dict(zip(UNITS, states, strict=False))
        time.sleep(0.5)


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
        timings["console_boot_s"] = boot_fresh_console(public)
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
            "relay": relay,
            "adopted": adopted,
            "timings": timings,
            "sunjammer": next(e for e in state["hosts"] if e["name"] == "sunjammer"),
        }
    finally:
        net.stop_host_relay(CONSOLE, "http")
        net.stop_host_relay(CONSOLE, "ssh")
        host.stop(CONSOLE)
        net.unplug(CONSOLE)
        shutil.rmtree(host.layers(CONSOLE)["top"], ignore_errors=True)


@pytest.fixture(scope="module")
def browser(installed):
    address, port = installed["relay"].rsplit(":", 1)
    client = Browser(address, int(port))
    wait_for_web(client)
    sign_in(client, DELEGATE)
    return client


def test_the_install_runs_the_console_under_systemd_as_remora(installed, capsys):
    assert host.state(CONSOLE) == "running"  # no failed unit
    assert units_active() == dict.fromkeys(UNITS, "active")
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
    states = units_active()
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

    assert units_active() == dict.fromkeys(UNITS, "active")
    assert control.run(CONSOLE, "sha256sum /etc/remora/remora.env").stdout == settings_before
    assert json.loads(server.manage("shell", "--no-imports", "-c", RUNS)) == runs_before
    wait_for_web(browser)
    assert run_state(browser, runs_before[-1][0])[0] == "succeeded"  # still signed in


def test_the_machine_got_no_lab_address_or_route(installed):
    addresses = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    subnet = CONSOLE.address.rsplit(".", 1)[0] + "."

    assert subnet not in addresses and subnet not in routes
    assert BY_NAME["sunjammer"].address.startswith(subnet)
