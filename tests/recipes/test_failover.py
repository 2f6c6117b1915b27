"""The failover monitor on the lab: keepalived on beamrider (MASTER) and remora2 (BACKUP), each
tracking its local Perlbal (both pool sunjammer's web server); beamrider holds the floating
address; stopping its keepalived under a stream of requests moves the address to remora2, and
the test measures how long requests failed and how many."""

import ipaddress
import subprocess
import threading
import time

import pytest

from hosts.models import Host
from jobs.models import RunState
from jobs.recipes import get, render_status
from lab.config import SUBNET

from .conftest import output
from .test_perlbal import activate, address, lab_run, perlbal_params, serve_page

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

ROUTER_ID = 51


def floating(prefix: int = 24) -> str:
    """An address of the lab's subnet no lab host uses."""
    network = ipaddress.IPv4Interface(f"{address('beamrider')}/{prefix}").network
    return f"{network.network_address + 100}/{prefix}"


def monitor_params(role: str, peer: str) -> dict:
    return {
        "floating_address": floating(),
        "role": role,
        "peer": peer,
        "router_id": ROUTER_ID,
        "interface": "eth0",
        "check_port": 80,
    }


def remove_keepalived(name: str) -> None:
    lab_run(
        name,
        "systemctl disable --now keepalived >/dev/null 2>&1 || true; "
        "rm -f /etc/keepalived/keepalived.conf /etc/keepalived/check_perlbal.sh",
    )


def stream_during(vip: str, command: str) -> tuple[list, float]:
    """150 requests from sunjammer to the floating address, one every 50 ms; `command` runs on
    beamrider after 2 s. Returns each request's (start, end, ok|fail) and when it ran."""
    loop = (
        "for i in $(seq 150); do t=$(date +%s.%N); "
        f"if curl -fsS -m 2 -o /dev/null http://{vip}/ 2>/dev/null; then r=ok; else r=fail; fi; "
        'echo "$t $(date +%s.%N) $r"; sleep 0.05; done'
    )
    stream: dict = {}
    worker = threading.Thread(
        target=lambda: stream.update(result=lab_run("sunjammer", loop, timeout=120))
    )
    worker.start()
    time.sleep(2.0)
    at = float(lab_run("beamrider", f"date +%s.%N; {command}").stdout.split()[0])
    worker.join(timeout=120)
    return [line.split() for line in stream["result"].stdout.splitlines()], at


def report(what: str, lines: list, at: float) -> tuple[list, float]:
    """Print and return the failed requests and how long requests failed: from the first
    failing request's start to the end of the last failing one."""
    failed = [(float(a), float(b)) for a, b, r in lines if r != "ok"]
    window = failed[-1][1] - failed[0][0] if failed else 0.0
    slowest = max(float(b) - float(a) for a, b, _ in lines)
    after = [float(a) - at for a, b, r in lines if r == "ok" and float(a) > at]
    print(
        f"\n{what}, under load: {len(lines)} requests, {len(failed)} failed, requests failed "
        f"for {window:.2f} s; slowest request {slowest:.2f} s; first request started after "
        f"it that succeeded: +{min(after):.2f} s"
    )
    return failed, window


def holds(run_recipe, name: str, check: dict, within: float = 15) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        said = output(run_recipe("failover_status", name, check))
        if f"held by this host ({name})" in said:
            return True
        time.sleep(1)
    print(said)
    return False


def test_failover_recipes_render_and_pass_shellcheck(lab_inventory):
    beamrider = Host.objects.get(name="beamrider")
    values = {
        "failover_monitor": monitor_params("MASTER", "remora2"),
        "failover_status": {"floating_address": floating(), "peer": "remora2"},
    }
    for name, params in values.items():
        recipe = get(name)
        form = recipe.form(params, host=beamrider)
        assert form.is_valid(), (name, form.errors)
        for script in filter(
            None, [recipe.render(form.cleaned_data), render_status(recipe, form.cleaned_data)]
        ):
            for check in (["bash", "-n"], ["shellcheck", "-s", "bash", "-"]):
                done = subprocess.run(check, input=script, text=True, capture_output=True)
                assert done.returncode == 0, (name, check, done.stdout, done.stderr)
    form = get("failover_monitor").form(monitor_params("BACKUP", "beamrider"), host=beamrider)
    assert not form.is_valid()
    assert "not this one" in str(form.errors["peer"])
    # Proposals from the inventory: beamrider (the MySQL master) is the MASTER; remora2's peer
    # is beamrider (it runs a Perlbal), by its service address.
    assert get("failover_monitor").form(host=beamrider).fields["role"].initial == "MASTER"
    proposed = get("failover_monitor").form(host=Host.objects.get(name="remora2"))
    assert proposed.fields["role"].initial == "BACKUP"
    assert proposed.fields["peer"].initial == address("beamrider")
    # Empty priority: 150 for the MASTER, 100 for the BACKUP.
    form = get("failover_monitor").form(monitor_params("BACKUP", "remora2"), host=beamrider)
    assert form.is_valid() and form.cleaned_data["priority"] == 100
    assert form.cleaned_data["peer"] == address("remora2")


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"floating_address": "192.0.2.10/24"}, "floating_address", "outside beamrider's subnet"),
        ({"floating_address": f"{SUBNET}.100"}, "floating_address", "prefix"),
        ({"floating_address": f"{SUBNET}.300/24"}, "floating_address", "not an IPv4 address"),
        ({"router_id": 256}, "router_id", "less than or equal to 255"),
        ({"interface": "eth0; reboot"}, "interface", "interface name"),
        ({"check_port": 70000}, "check_port", "between 1 and 65535"),
        ({"peer": "nosuchhost"}, "peer", "neither an IPv4 address"),
    ],
)
def test_bad_failover_parameters_are_refused(lab_inventory, changes, field, message):
    params = {**monitor_params("MASTER", "remora2"), **changes}
    if field == "floating_address" and "10.80.0." in changes[field]:
        # In whichever lab subnet this run has.
        prefix = ".".join(address("beamrider").split(".")[:3])
        params[field] = changes[field].replace("10.80.0", prefix)
    form = get("failover_monitor").form(params, host=Host.objects.get(name="beamrider"))
    assert not form.is_valid()
    assert message in " ".join(form.errors[field]), form.errors


def test_the_floating_address_moves_to_remora2_when_beamrider_stops(run_recipe, status_of):
    activate("remora2")
    serve_page("sunjammer")
    for name in ("beamrider", "remora2"):
        remove_keepalived(name)
        run = run_recipe("perlbal", name, perlbal_params("sunjammer:8080"))
        assert run.state == RunState.SUCCEEDED, output(run)
    master = monitor_params("MASTER", "remora2")
    backup = monitor_params("BACKUP", "beamrider")

    code, said = status_of("failover_monitor", "beamrider", master)
    assert code == 3 and "missing:" in said, said

    for name, params in (("beamrider", master), ("remora2", backup)):
        run = run_recipe("failover_monitor", name, params)
        assert run.state == RunState.SUCCEEDED, (run.error, output(run))
        code, said = status_of("failover_monitor", name, params)
        assert code == 0, said
        again = run_recipe("failover_monitor", name, params)
        assert "already in place" in output(again), output(again)

    vip = floating().split("/")[0]
    check = {"floating_address": floating(), "peer": "remora2"}
    assert holds(run_recipe, "beamrider", check)
    lab_run("sunjammer", f"curl -fsS -m 2 http://{vip}/")

    # A steady stream from sunjammer to the floating address; stop beamrider's keepalived.
    lines, stopped_at = stream_during(vip, "systemctl stop keepalived")
    failed, window = report("keepalived stopped on beamrider", lines, stopped_at)
    assert len(lines) == 150
    assert all(r == "ok" for _, _, r in lines[-20:])  # the stream goes on after the move
    assert window < 5.0

    moved = run_recipe("failover_status", "remora2", {**check, "peer": "beamrider"})
    assert "held by this host (remora2)" in output(moved), output(moved)
    elsewhere = run_recipe("failover_status", "beamrider", check)
    assert "held by the peer" in output(elsewhere), output(elsewhere)
    code, said = status_of("failover_monitor", "beamrider", master)
    assert code == 3 and "keepalived is not active" in said

    # Back: beamrider (the higher priority) takes the address again when it returns.
    lab_run("beamrider", "systemctl start keepalived")
    assert holds(run_recipe, "beamrider", check)

    # The track script: when beamrider's Perlbal stops answering, beamrider gives the address
    # up (keepalived's FAULT state) although keepalived itself still runs.
    lines, stopped_at = stream_during(vip, "systemctl stop perlbal")
    failed, window = report("Perlbal stopped on beamrider", lines, stopped_at)
    assert all(r == "ok" for _, _, r in lines[-20:])
    assert window < 6.0
    assert holds(run_recipe, "remora2", {**check, "peer": "beamrider"})
    lab_run("beamrider", "systemctl start perlbal")
    assert holds(run_recipe, "beamrider", check)
