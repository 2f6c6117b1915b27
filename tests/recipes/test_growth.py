"""The seed's whole plan, executed on the lab through the console's own path (planner → batch
→ runs → worker function → SSH), approvals by a second person included:

1. nothing → Phase 1 on beamrider; the stack probe answers through Perlbal (writes and reads on
   beamrider's master, both data directories writable);
2. sunjammer powered off: the site still answers (the seed's reliability claim);
3. Phase 1 → 2: requests reach both front ends; sunjammer writes the data directories over NFS;
4. Phase 2 → 3: a row written on the master appears on remora2's shadow; lag is reported; reads
   go to the shadow; the second Perlbal and the failover pair are up;
5. under a steady stream, beamrider's keepalived stops: the floating address moves to remora2
   and the stream goes on (failures counted); a front end is drained: no request fails;
6. every step's recipe run a second time reports "already in place".

Phase 1 → 2 is applied the way a person does it: in a real browser (the Plan page with both
pictures, Apply, the batch page showing the steps progress) with a real worker process running
the steps, and a second person approving beamrider's. The test prints a timeline of each step."""

import ipaddress
import json
import os
import re
import threading
import time

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from hosts.changes import save_audited
from hosts.models import GrowthPhase, Host
from jobs import batches, planner
from jobs import launch as launching
from jobs.models import PlanBatch, PlanStep, RunState
from jobs.recipes import get
from jobs.tasks import execute_run
from lab import base, host
from lab.config import BY_NAME
from tests.access.helpers import current_code
from tests.jobs.worker_process import start_worker, stop, wait_listening

from .conftest import output
from .test_perlbal import lab_run

pytestmark = [pytest.mark.lab, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRETS = {
    "app_password": "app-Growth-pw-7731",
    "repl_password": "repl-Growth-pw-2290",
    "seed_password": "seed-Growth-pw-5127",
}
TIMELINE: list[tuple[str, float]] = []
# The figures bench/growth.py prints (written as JSON where REMORA_BENCH_OUT says).
RESULTS: dict[str, float | int] = {}


def phase(number: int) -> GrowthPhase:
    return GrowthPhase.objects.get(number=number)


def address(name: str) -> str:
    return Host.objects.get(name=name).reach_address


def floating() -> str:
    network = ipaddress.IPv4Interface(f"{address('beamrider')}/24").network
    return f"{network.network_address + 100}/24"


def timed(label: str, started: float) -> None:
    TIMELINE.append((label, time.monotonic() - started))


def drive(batch: PlanBatch, approver, label: str) -> PlanBatch:
    """What the workers and a second person do: advance the batch, approve each step's run,
    execute it, until the batch rests. Each step's time goes to the timeline."""
    started = time.monotonic()
    step_started = time.monotonic()
    seen: set[int] = set()
    while True:
        batches.advance(batch.pk)
        batch.refresh_from_db()
        for step in batch.steps.exclude(pk__in=seen).exclude(status__in=["pending", "launched"]):
            seen.add(step.pk)
            timed(f"  {label} {step.position}. {step.recipe} on {step.host.name}: "
                  f"{step.get_status_display().lower()}", step_started)  # fmt: skip
            step_started = time.monotonic()
        if batch.status != PlanBatch.Status.RUNNING:
            break
        step = batch.steps.filter(status=PlanStep.Status.LAUNCHED).select_related("run").first()
        if step is None:
            time.sleep(0.2)
            continue
        if step.run.state == RunState.AWAITING_APPROVAL:
            launching.approve(approver, step.run, "the growth plan", second_factor=True)
        execute_run(step.run.pk)
    timed(f"{label}: the whole apply", started)
    RESULTS[f"apply {label} s"] = round(time.monotonic() - started, 1)
    runs = [s.run for s in batch.steps.select_related("run") if s.run]
    RESULTS[f"apply {label}: runs' own time s"] = round(
        sum((r.finished_at - r.started_at).total_seconds() for r in runs if r.finished_at), 1
    )
    failed = batch.steps.filter(status=PlanStep.Status.FAILED).select_related("run").first()
    assert batch.status == PlanBatch.Status.SUCCEEDED, (
        f"step {failed.position} {failed.recipe} on {failed.host}: {failed.note}\n"
        + (output(failed.run) if failed and failed.run else "")
    )
    return batch


def probe(client: str, target: str) -> tuple[int, dict]:
    out = lab_run(client, f"curl -s -m 10 -w '\\n%{{http_code}}' http://{target}/").stdout
    body, code = out.rsplit("\n", 1)
    return int(code), json.loads(body)


def healthy(answer: dict) -> bool:
    return (
        answer.get("master_write") is True
        and answer.get("shadow_read") is True
        and set(answer.get("data_dirs", {}).values()) == {True}
    )


def stream(client: str, url: str, count: int, action, pause: float = 0.05) -> tuple[list, float]:
    """`count` requests from `client`, one every `pause` s; `action()` runs after 2 s. Returns
    each request's (start, end, ok|fail) and when the action ran (epoch seconds)."""
    loop = (
        f"for i in $(seq {count}); do t=$(date +%s.%N); "
        f"if curl -fsS -m 2 -o /dev/null {url} 2>/dev/null; then r=ok; else r=fail; fi; "
        f'echo "$t $(date +%s.%N) $r"; sleep {pause}; done'
    )
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(out=lab_run(client, loop, timeout=300)))
    worker.start()
    time.sleep(2.0)
    at = time.time()
    action()
    worker.join(timeout=300)
    return [line.split() for line in result["out"].stdout.splitlines()], at


def failures(what: str, lines: list) -> tuple[int, float, float]:
    """How many requests failed, for how long (first failing start to last failing end), and
    the slowest request (what a visitor waited at worst while nothing failed)."""
    failed = [(float(a), float(b)) for a, b, r in lines if r != "ok"]
    window = failed[-1][1] - failed[0][0] if failed else 0.0
    slowest = max(float(b) - float(a) for a, b, _ in lines)
    print(f"\n{what}: {len(lines)} requests, {len(failed)} failed, for {window:.2f} s; "
          f"slowest request {slowest:.2f} s")  # fmt: skip
    return len(failed), window, slowest


def apply_in_the_browser(page, url, lead, second, inputs, redis_conn, screenshot) -> None:
    """The lead opens the Plan page, sees both pictures and the steps, fills in what the plan
    needs and applies it; a real worker runs the steps; a second person approves beamrider's;
    the batch page shows the steps progress until the plan has succeeded."""
    started = time.monotonic()
    worker = start_worker()
    try:
        wait_listening(worker, redis_conn)
        page.goto(f"{url}/login/")
        page.fill("#id_username", lead.username)
        page.fill("#id_password", "pw-lead-1")
        page.click("button[type=submit]")
        page.fill("#id_token", current_code(TOTPDevice.objects.get(user=lead)))
        page.press("#id_token", "Enter")
        page.wait_for_url(f"{url}/")
        page.goto(f"{url}/plan/")
        assert page.locator("svg.topology-svg").count() == 2  # now and next, side by side
        assert page.locator("ol.plan-steps > li").count() == 6
        screenshot(page, "plan-1-to-2")
        for name in ("repo_url", "ref", "app_password"):
            page.fill(f"#id_{name}", inputs[name])
        page.click("text=Apply: 6 steps")
        page.wait_for_url(f"{url}/plan/*/")
        seen: list[str] = []
        batch = PlanBatch.objects.latest("pk")
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            for step in batch.steps.filter(run__state=RunState.AWAITING_APPROVAL):
                launching.approve(second, step.run, "the growth plan", second_factor=True)
            batch.refresh_from_db()
            shown = " ".join(page.locator(".run-status").inner_text().split())
            if not seen or seen[-1] != shown:
                seen.append(shown)  # what the person sees change, without reloading
            if batch.status != PlanBatch.Status.RUNNING and "Running" not in shown:
                break
            time.sleep(0.5)
        failed = batch.steps.filter(status=PlanStep.Status.FAILED).first()
        assert batch.status == PlanBatch.Status.SUCCEEDED, (failed and failed.note, seen)
        page.wait_for_selector("#plan-state >> text=Succeeded", timeout=10000)
        assert "6 of 6 steps done" in page.locator(".run-status").inner_text()
        assert any("Running" in s and "of 6 steps done" in s for s in seen), seen
        assert page.locator("li.step-succeeded, li.step-in_place").count() == 6
        screenshot(page, "plan-1-to-2-done")
    finally:
        stop(worker)
    timed(f"1 → 2 in the browser, with a worker process (seen: {len(seen)} states)", started)
    RESULTS["apply 1 → 2 s"] = round(time.monotonic() - started, 1)
    runs = [s.run for s in batch.steps.select_related("run") if s.run]
    RESULTS["apply 1 → 2: runs' own time s"] = round(
        sum((r.finished_at - r.started_at).total_seconds() for r in runs if r.finished_at), 1
    )


def test_the_seed_plan_grows_the_stack_from_nothing_to_phase_3(
    lab_inventory,
    probe_repo,
    run_recipe,
    status_of,
    live_server,
    page,
    console_errors,
    screenshot,
    redis_conn,
):
    lead, second = lab_inventory["lead"], lab_inventory["second"]
    inputs = {"repo_url": probe_repo["url"], "ref": "main", **SECRETS,
              "floating_address": floating()}  # fmt: skip
    beamrider_url = address("beamrider")
    TIMELINE.clear()

    # 1. Nothing → Phase 1: the whole stack on beamrider.
    batch = batches.apply(lead, None, phase(1), inputs, second_factor=True)
    drive(batch, second, "nothing → 1")
    code, answer = probe("sunjammer", beamrider_url)
    assert code == 200 and healthy(answer), answer
    assert answer["frontend"] == "beamrider"
    assert answer["master_server"] == answer["shadow_server"] == "beamrider"

    # 2. sunjammer powered off: a.sl.o answers with only beamrider up.
    started = time.monotonic()
    host.stop(BY_NAME["sunjammer"])
    code, answer = probe("remora2", beamrider_url)
    assert code == 200 and healthy(answer), answer
    host.start(BY_NAME["sunjammer"], base.base_dir(), base.archives())
    host.wait_running(BY_NAME["sunjammer"])
    timed("sunjammer off and on again; the site answered meanwhile", started)

    # 3. Phase 1 → 2, applied in the browser: a PHP front end on sunjammer, the data
    # directories over NFS.
    apply_in_the_browser(page, live_server.url, lead, second, inputs, redis_conn, screenshot)
    assert console_errors == []
    served = set()
    for _ in range(12):
        code, answer = probe("remora2", beamrider_url)
        assert code == 200 and healthy(answer), answer
        served.add(answer["frontend"])
    assert served == {"beamrider", "sunjammer"}
    lab_run("sunjammer", "runuser -u www-data -- sh -c 'echo over-nfs > /srv/remora/files/from-sj'")
    assert lab_run("beamrider", "cat /srv/remora/files/from-sj").stdout.strip() == "over-nfs"
    assert phase(2).is_current

    # 4. Phase 2 → 3: remora2 joins once someone makes it active.
    with pytest.raises(batches.PlanRefused, match="remora2 is not active"):
        batches.apply(lead, phase(2), phase(3), inputs, second_factor=True)
    remora2 = Host.objects.get(name="remora2")
    remora2.active = True
    save_audited(remora2, actor=lead)
    drive(batches.apply(lead, phase(2), phase(3), inputs, second_factor=True), second, "2 → 3")
    lab_run("beamrider", "mariadb -e \"CREATE TABLE IF NOT EXISTS remora.growth (id INT "
            "PRIMARY KEY); REPLACE INTO remora.growth VALUES (3)\"")  # fmt: skip
    seen = ""
    deadline = time.monotonic() + 30
    while "3" not in seen and time.monotonic() < deadline:
        seen = lab_run("remora2", "mariadb -N -e 'SELECT id FROM remora.growth' 2>/dev/null "
                       "|| true").stdout  # fmt: skip
    assert seen.split() == ["3"]
    replica = next(s for s in planner.desired(phase(3)) if s.recipe == "mariadb_replica")
    code, said = status_of("mariadb_replica", "remora2", {**replica.params, **SECRETS})
    assert code == 0 and re.search(r"lag: \d+ s", said), said
    vip = floating().split("/")[0]
    code, answer = probe("sunjammer", vip)
    assert code == 200 and healthy(answer), answer
    assert (answer["master_server"], answer["shadow_server"]) == ("beamrider", "remora2")
    code, _ = probe("sunjammer", address("remora2"))  # the second Perlbal answers
    assert code == 200
    check = {"floating_address": floating(), "peer": "remora2"}
    said = output(run_recipe("failover_status", "beamrider", check))
    assert "held by this host (beamrider)" in said, said
    assert phase(3).is_current

    # 5. Failover under a steady stream, then a drain under one.
    started = time.monotonic()
    lines, _ = stream("sunjammer", f"http://{vip}/", 150,
                      lambda: lab_run("beamrider", "systemctl stop keepalived"))  # fmt: skip
    failed, window, slowest = failures("failover (beamrider's keepalived stopped)", lines)
    assert lines[-1][2] == "ok" and failed < 20
    said = output(run_recipe("failover_status", "remora2", {**check, "peer": "beamrider"}))
    assert "held by this host (remora2)" in said, said
    lab_run("beamrider", "systemctl start keepalived")
    timed(f"failover: {failed} of {len(lines)} requests failed, for {window:.2f} s", started)
    RESULTS.update({"failover requests": len(lines), "failover failed": failed,
                    "failover failing for s": round(window, 2),
                    "failover slowest request s": round(slowest, 2)})  # fmt: skip

    started = time.monotonic()
    drain = {"backend": "sunjammer:8080", "pool": "remora", "manage_port": 60000, "wait": 60}
    drained: dict = {}
    lines, _ = stream("remora2", f"http://{beamrider_url}/", 200, lambda: drained.update(
        run=run_recipe("perlbal_drain_backend", "beamrider", drain)), pause=0.02)  # fmt: skip
    failed, _, slowest = failures("drain of sunjammer from beamrider's pool", lines)
    assert drained["run"].state == RunState.SUCCEEDED, output(drained["run"])
    assert failed == 0
    back = run_recipe("perlbal_add_backend", "beamrider", {k: drain[k] for k in
                      ("backend", "pool", "manage_port")})  # fmt: skip
    assert back.state == RunState.SUCCEEDED, output(back)
    timed(f"drain under load: {failed} of {len(lines)} requests failed", started)
    RESULTS.update({"drain requests": len(lines), "drain failed": failed,
                    "drain slowest request s": round(slowest, 2)})  # fmt: skip

    # 6. Every recipe of the stack a second time: already in place, nothing changed.
    started = time.monotonic()
    for step in planner.desired(phase(3)):
        values = {**step.params}
        for name, param in step.inputs.items():
            values[param] = inputs[name]
        form = get(step.recipe).form(values, host=step.host, fill_missing=True)
        assert form.is_valid(), (step.recipe, form.errors)
        [run] = launching.launch(lead, get(step.recipe), [step.host], form.cleaned_data,
                                 second_factor=True)  # fmt: skip
        if run.state == RunState.AWAITING_APPROVAL:
            launching.approve(second, run, "second run", second_factor=True)
        execute_run(run.pk)
        run.refresh_from_db()
        said = output(run)
        assert run.state == RunState.SUCCEEDED, (step.recipe, step.host, said)
        assert "already in place" in said, (step.recipe, step.host.name, said)
        for secret in SECRETS.values():
            assert secret not in said and secret not in run.script
    timed("every recipe again: already in place", started)

    # Every service's health check, on the stack the plan built: all healthy.
    started = time.monotonic()
    for placement in phase(3).placements.select_related("host"):
        check = run_recipe("service_health", placement.host.name, {"service": placement.kind})
        assert check.state == RunState.SUCCEEDED, (placement.kind, placement.host, output(check))
        assert "healthy:" in output(check)
    timed("every service's health check: healthy", started)
    RESULTS["every recipe again s"] = round(time.monotonic() - started, 1)

    print("\ntimeline:")
    for label, seconds in TIMELINE:
        print(f"  {seconds:7.1f} s  {label}")
    if os.environ.get("REMORA_BENCH_OUT"):
        with open(os.environ["REMORA_BENCH_OUT"], "w") as out:
            json.dump({"results": RESULTS, "timeline": TIMELINE}, out, indent=1)
