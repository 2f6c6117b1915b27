"""Perlbal on the lab: beamrider balances over two small web servers (sunjammer and remora2, by
their service addresses), a second run changes nothing, a front end is drained under a steady
stream of requests without one failing, and added back; the forms refuse bad front ends."""

import re
import subprocess
import threading
import time

import pytest

from hosts.models import Host
from jobs.models import RunState
from jobs.recipes import get, render_status

from .conftest import output

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

BACKEND_PORT = 8080  # the inventory's PHP front-end port; port 80 stays Perlbal's
RECIPES = ("perlbal", "perlbal_add_backend", "perlbal_drain_backend", "perlbal_pool_status")


def lab_run(name: str, command: str, timeout: float = 300) -> subprocess.CompletedProcess:
    from lab import control
    from lab.config import BY_NAME

    result = control.run(BY_NAME[name], command, timeout=timeout)
    assert result.returncode == 0, f"{name}: {command}\n{result.stdout}\n{result.stderr}"
    return result


# apt on lab hosts shares one archive directory: wait for its lock rather than fail.
APT = (
    "for i in $(seq 60); do DEBIAN_FRONTEND=noninteractive apt-get install -y -q {pkgs} "
    ">/tmp/apt.log 2>&1 && break; "
    "grep -q 'lock' /tmp/apt.log || apt-get update -q >/dev/null 2>&1 || true; sleep 2; done; "
    "dpkg-query -W -f='${{Status}}' {pkgs} | grep -q 'ok installed' "
    "|| {{ cat /tmp/apt.log; exit 1; }}"
)


def serve_page(name: str) -> None:
    """A tiny web server (nginx-light) on the host's port 8080 answering with its name."""
    lab_run(
        name,
        APT.format(pkgs="nginx-light curl")
        + f" && sed -i 's/listen 80 default_server;/listen {BACKEND_PORT} default_server;/;"
        f" s/listen \\[::\\]:80 default_server;/listen [::]:{BACKEND_PORT} default_server;/'"
        f" /etc/nginx/sites-available/default && echo {name} > /var/www/html/index.html"
        f" && systemctl restart nginx && curl -fsS http://127.0.0.1:{BACKEND_PORT}/",
    )


def remove_perlbal(name: str) -> None:
    lab_run(
        name,
        "systemctl disable --now perlbal >/dev/null 2>&1 || true; "
        "rm -f /etc/systemd/system/perlbal.service /etc/perlbal/perlbal.conf; "
        "systemctl daemon-reload; "
        "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q perlbal >/dev/null 2>&1 || true",
    )


def activate(*names: str) -> None:
    # remora2 is a planned host in the seed (inactive: nothing runs there); the lab has it.
    Host.objects.filter(name__in=names).update(active=True)


def address(name: str) -> str:
    return Host.objects.get(name=name).reach_address


def perlbal_params(*backends: str) -> dict:
    return {"port": 80, "backends": ", ".join(backends), "pool": "remora", "manage_port": 60000}


def curl_lines(host: str, url: str, count: int, pause: float = 0.02) -> str:
    """`count` requests from inside `host`, one line each: "<epoch> ok <body>" or "<epoch> fail"."""
    return (
        f"for i in $(seq {count}); do t=$(date +%s.%N); "
        f'if body=$(curl -fsS -m 2 {url} 2>/dev/null); then echo "$t ok $body"; '
        f'else echo "$t fail"; fi; sleep {pause}; done'
    )


def test_every_perlbal_recipe_renders_and_passes_shellcheck(lab_inventory):
    beamrider = Host.objects.get(name="beamrider")
    values = {
        "perlbal": perlbal_params("sunjammer:8080", "10.80.0.4:8080"),
        "perlbal_add_backend": {
            "backend": "sunjammer:8080",
            "pool": "remora",
            "manage_port": 60000,
        },
        "perlbal_drain_backend": {
            "backend": "sunjammer:8080",
            "pool": "remora",
            "manage_port": 60000,
            "wait": 120,
        },
        "perlbal_pool_status": {"pool": "remora", "manage_port": 60000},
    }
    for name in RECIPES:
        recipe = get(name)
        form = recipe.form(values[name], host=beamrider)
        assert form.is_valid(), (name, form.errors)
        scripts = [recipe.render(form.cleaned_data), render_status(recipe, form.cleaned_data)]
        for script in filter(None, scripts):
            for check in (["bash", "-n"], ["shellcheck", "-s", "bash", "-"]):
                done = subprocess.run(check, input=script, text=True, capture_output=True)
                assert done.returncode == 0, (name, check, done.stdout, done.stderr)
    # The form proposes the inventory's pool (beamrider's Perlbal service settings).
    proposed = get("perlbal").form(host=beamrider)
    assert proposed.fields["backends"].initial == "beamrider:8080"
    assert proposed.fields["port"].initial == 80
    # The inventory's names become service addresses: what the other hosts reach.
    form = get("perlbal").form(perlbal_params("sunjammer:8080"), host=beamrider)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["backends"] == [f"{address('sunjammer')}:8080"]


@pytest.mark.parametrize(
    "backends, message",
    [
        ("sunjammer :8080", "without spaces"),
        ("10.80.0.3:70000", "between 1 and 65535"),
        ("10.80.0.3", "IP:port"),
        ("nosuchhost:8080", "neither an IPv4 address nor a host of the inventory"),
        ("", "required"),
    ],
)
def test_bad_front_ends_are_refused_by_the_form(lab_inventory, backends, message):
    form = get("perlbal").form(perlbal_params(backends), host=Host.objects.get(name="beamrider"))
    assert not form.is_valid()
    assert message in str(form.errors), form.errors


def test_bad_ports_and_pool_names_are_refused(lab_inventory):
    beamrider = Host.objects.get(name="beamrider")
    form = get("perlbal").form(
        {**perlbal_params("10.80.0.3:8080"), "port": 0, "pool": "re mora"}, host=beamrider
    )
    assert not form.is_valid()
    assert "between 1 and 65535" in str(form.errors["port"])
    assert "pool name" in str(form.errors["pool"])
    drain = get("perlbal_drain_backend").form(
        {"backend": "10.80.0.3:8080; reboot", "pool": "remora", "manage_port": 60000, "wait": 0},
        host=beamrider,
    )
    assert not drain.is_valid()
    assert set(drain.errors) == {"backend", "wait"}


def test_perlbal_pools_two_front_ends_and_drains_one_without_dropping_a_request(
    run_recipe, status_of
):
    activate("remora2")
    for name in ("sunjammer", "remora2"):
        serve_page(name)
    remove_perlbal("beamrider")
    params = perlbal_params(f"sunjammer:{BACKEND_PORT}", f"remora2:{BACKEND_PORT}")
    nodes = [f"{address(n)}:{BACKEND_PORT}" for n in ("sunjammer", "remora2")]

    code, said = status_of("perlbal", "beamrider", params)
    assert code == 3, said
    assert "missing:" in said

    started = time.monotonic()
    run = run_recipe("perlbal", "beamrider", params)
    assert run.state == RunState.SUCCEEDED, (run.error, output(run))
    print(f"\nperlbal installed and configured in {time.monotonic() - started:.1f} s")
    code, said = status_of("perlbal", "beamrider", params)
    assert code == 0, said

    # Requests from inside beamrider to the local Perlbal reach both front ends.
    answers = lab_run("beamrider", "for i in $(seq 40); do curl -fsS http://127.0.0.1/; done")
    assert set(answers.stdout.split()) == {"sunjammer", "remora2"}, answers.stdout

    again = run_recipe("perlbal", "beamrider", params)
    assert again.state == RunState.SUCCEEDED, again.error
    assert "already in place" in output(again)

    pool = run_recipe("perlbal_pool_status", "beamrider", {"pool": "remora", "manage_port": 60000})
    assert pool.state == RunState.SUCCEEDED, output(pool)
    for node in nodes:
        assert re.search(rf"{re.escape(node)}\s+up \(HTTP 200\)", output(pool)), output(pool)

    # Drain remora2 under a steady stream of requests from sunjammer to beamrider's Perlbal.
    stream: dict = {}
    url = f"http://{address('beamrider')}/"
    worker = threading.Thread(
        target=lambda: stream.update(result=lab_run("sunjammer", curl_lines("sunjammer", url, 200)))
    )
    worker.start()
    time.sleep(1.0)
    drain_params = {
        "backend": f"remora2:{BACKEND_PORT}",
        "pool": "remora",
        "manage_port": 60000,
        "wait": 60,
    }
    drain = run_recipe("perlbal_drain_backend", "beamrider", drain_params)
    drained_at = time.time()
    worker.join(timeout=120)
    assert drain.state == RunState.SUCCEEDED, (drain.error, output(drain))
    assert "Drained" in output(drain)

    lines = [line.split() for line in stream["result"].stdout.splitlines()]
    failed = [line for line in lines if line[1] != "ok"]
    after = [line[2] for line in lines if line[1] == "ok" and float(line[0]) > drained_at + 0.5]
    print(
        f"drain under load: {len(lines)} requests, {len(failed)} failed, "
        f"{len(after)} after the drain, all to {sorted(set(after))}"
    )
    assert len(lines) == 200
    assert failed == []
    assert "remora2" in {line[2] for line in lines}  # it served before the drain
    assert after and set(after) == {"sunjammer"}  # the stream went on, to sunjammer only

    pool = run_recipe("perlbal_pool_status", "beamrider", {"pool": "remora", "manage_port": 60000})
    assert "1 node(s), 0 down" in output(pool), output(pool)
    assert nodes[1] not in output(pool)
    code, said = status_of("perlbal", "beamrider", params)
    assert code == 3 and nodes[1] in said  # the pool no longer has the configured nodes

    again = run_recipe("perlbal_drain_backend", "beamrider", drain_params)
    assert "already in place" in output(again), output(again)

    # Add it back: the pool is whole again, live and in the configuration file.
    added = run_recipe(
        "perlbal_add_backend",
        "beamrider",
        {"backend": f"remora2:{BACKEND_PORT}", "pool": "remora", "manage_port": 60000},
    )
    assert added.state == RunState.SUCCEEDED, output(added)
    code, said = status_of("perlbal", "beamrider", params)
    assert code == 0, said
    lab_run("beamrider", f"grep -qx '  POOL remora ADD {nodes[1]}' /etc/perlbal/perlbal.conf")
    again = run_recipe(
        "perlbal_add_backend",
        "beamrider",
        {"backend": f"remora2:{BACKEND_PORT}", "pool": "remora", "manage_port": 60000},
    )
    assert "already in place" in output(again)


def test_operations_on_a_host_without_perlbal_say_what_is_missing(run_recipe):
    activate("remora2")
    remove_perlbal("remora2")
    run = run_recipe("perlbal_pool_status", "remora2", {"pool": "remora", "manage_port": 60000})
    assert run.state == RunState.FAILED
    assert "run the Perlbal recipe (perlbal) first" in output(run)
