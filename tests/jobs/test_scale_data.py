"""The scale data generator (`manage.py remora_scale_data`) and its write path
(`audit.log.append_generated`), with tiny numbers."""

from collections import defaultdict
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from hosts.models import Host
from jobs.models import FINISHED, JobRun, RunState
from jobs.recipes import get
from remora_admin.access.models import Zone
from remora_admin.audit.catalogue import meaning
from remora_admin.audit.chain import verify_chain
from remora_admin.audit.log import REDACTED, append_generated, record
from remora_admin.audit.models import AuditEvent, ChainHead

SMALL = ["--events", "300", "--runs", "40", "--hosts", "12", "--seed", "3"]
ENDINGS = {"run.succeeded", "run.failed", "run.timed_out", "run.cancelled"}


def generate(*args: str) -> str:
    out = StringIO()
    call_command("remora_scale_data", *args, stdout=out)
    return out.getvalue()


def stories() -> dict[str, list[AuditEvent]]:
    found = defaultdict(list)
    for event in AuditEvent.objects.filter(target_type="jobs.jobrun").order_by("sequence"):
        found[event.target_id].append(event)
    return found


@pytest.mark.django_db
def test_generates_hosts_runs_and_a_chain_that_verifies():
    Zone.objects.create(name="beamrider", sensitivity=Zone.Sensitivity.RESTRICTED)
    record("auth.login", actor_name="someone")  # a chain that was there before

    output = generate(*SMALL)

    assert "events: 300 written" in output
    assert AuditEvent.objects.count() == 301
    assert ChainHead.objects.get(id=1).sequence == 301
    hosts = Host.objects.filter(name__startswith="gen-host-")
    names = sorted(hosts.values_list("name", flat=True))
    assert names == [f"gen-host-{n:04d}" for n in range(1, 13)]
    # Spread over the generated zones and the existing one.
    assert set(hosts.values_list("zone__name", flat=True)) == {"gen-a", "gen-b", "beamrider"}
    runs = JobRun.objects.all()
    assert runs.count() == 40
    assert all(run.state in FINISHED and get(run.recipe) is not None for run in runs)
    assert len({run.requested_by_id for run in runs}) > 1
    report = verify_chain()
    assert report.ok, report.reason
    assert report.checked == 301
    assert all(meaning(a) for a in AuditEvent.objects.values_list("action", flat=True).distinct())
    # Times increase with the sequence and stay in the past.
    generated = list(AuditEvent.objects.filter(sequence__gt=1).order_by("sequence"))
    times = [e.occurred_at for e in generated]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert times[-1] < datetime.now(UTC)
    assert (times[-1] - times[0]).days >= 150
    # Each new inventory row has its event; generated people can not sign in.
    assert AuditEvent.objects.filter(action="host.created").count() == 12
    assert AuditEvent.objects.filter(action="zone.created").count() == 2
    assert not get_user_model().objects.get(username="gen-user-01").has_usable_password()


@pytest.mark.django_db
def test_each_run_has_its_story_in_order():
    generate("--events", "2000", "--runs", "400", "--hosts", "12", "--seed", "5")

    told = stories()
    runs = {str(run.pk): run for run in JobRun.objects.select_related("host__zone")}
    assert set(told) == set(runs)
    for run_id, events in told.items():
        run = runs[run_id]
        actions = [e.action for e in events]
        assert actions[0] == "run.requested"
        requested = events[0]
        assert requested.actor_id == run.requested_by_id
        assert requested.target_repr == str(run)
        assert requested.zone == run.host.zone.name
        assert requested.details["script"] == run.script
        assert requested.details["secret_params"] == REDACTED  # redacted, as record() does
        assert requested.occurred_at == run.created_at
        if run.state == RunState.REJECTED:
            assert actions == ["run.requested", "run.rejected"]
            continue
        if run.approved_by_id:
            assert actions[1] == "run.approved"
            assert events[1].actor_id == run.approved_by_id != run.requested_by_id
            assert events[1].details["reason"] == run.decision_reason
        started = actions.index("run.started")
        assert actions[-1] == f"run.{run.state}" and actions[-1] in ENDINGS
        assert started == len(actions) - 2 - (run.state == RunState.CANCELLED)
        assert events[-1].details["exit_code"] == run.exit_code
        assert events[-1].occurred_at == run.finished_at
        assert events[started].occurred_at == run.started_at
    # Provisioning in a zone that asks for approval waited for a second person, and only it.
    decided = {r.pk for r in runs.values() if r.approved_by_id}
    needs = {
        r.pk
        for r in runs.values()
        if r.host.zone.requires_approval and get(r.recipe).category == "provision"
    }
    assert decided == needs
    states = {r.state for r in runs.values()}
    assert {RunState.SUCCEEDED, RunState.FAILED, RunState.REJECTED} <= states


@pytest.mark.django_db
def test_a_second_run_appends():
    generate(*SMALL)
    first_head = ChainHead.objects.get(id=1).sequence

    generate(*SMALL)

    assert AuditEvent.objects.count() == first_head + 300
    assert JobRun.objects.count() == 80
    assert Host.objects.filter(name__startswith="gen-host-").count() == 12  # not made again
    assert not AuditEvent.objects.filter(sequence__gt=first_head, action="host.created").exists()
    report = verify_chain()
    assert report.ok, report.reason
    assert report.checked == first_head + 300


@pytest.mark.django_db
def test_too_few_events_for_the_runs_is_refused_and_nothing_is_made():
    with pytest.raises(CommandError, match="too few"):
        generate("--events", "10", "--runs", "40", "--hosts", "3")
    assert not Host.objects.exists() and not JobRun.objects.exists()
    assert not Zone.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_append_generated_refuses_an_action_outside_the_catalogue():
    when = datetime(2026, 1, 1, tzinfo=UTC)
    good = {"action": "auth.login", "actor_name": "x", "occurred_at": when}
    assert append_generated([good]) == 1
    with pytest.raises(ValueError, match="not in the audit catalogue"):
        append_generated([{**good, "action": "made.up"}])
    assert AuditEvent.objects.count() == 1
    assert verify_chain().ok
