"""One event's page: a change's before and after side by side (a run's whole story:
tests/jobs/test_audit_story.py)."""

import uuid

import pytest

from remora_admin.audit.log import record

pytestmark = pytest.mark.django_db


def test_a_change_shows_before_and_after_side_by_side(auditor):
    event = record(
        "host.updated", details={"before": {"ssh_port": 22}, "after": {"ssh_port": 2222}}
    )
    page = auditor.get(f"/audit/{event.sequence}/").content.decode()
    assert "What changed" in page
    assert "<td><code>ssh_port</code></td><td>22</td><td>2222</td>" in page


def test_a_plan_batch_event_shows_its_steps_in_order_with_their_runs(auditor, topology):
    from hosts.models import GrowthPhase, Host
    from jobs.models import JobRun, PlanBatch

    batch = PlanBatch.objects.create(
        to_phase=GrowthPhase.objects.get(number=2), from_phase=GrowthPhase.objects.get(number=1),
        status=PlanBatch.Status.FAILED,
    )  # fmt: skip
    beamrider, sunjammer = Host.objects.get(name="beamrider"), Host.objects.get(name="sunjammer")
    run = JobRun.objects.create(batch=uuid.uuid4(), recipe="mariadb_server", script="true",
                                host=beamrider, timeout=60)  # fmt: skip
    requested = record("run.requested", target=run)
    batch.steps.create(position=1, recipe="mariadb_server", host=beamrider, run=run,
                       why="the database first", status="succeeded")  # fmt: skip
    batch.steps.create(position=2, recipe="apache_php", host=sunjammer, why="a front end",
                       status="failed", note="apt-get: no network")  # fmt: skip
    event = record("plan.applied", target=batch)

    page = auditor.get(f"/audit/{event.sequence}/").content.decode()

    assert "The plan&#x27;s steps" in page or "The plan's steps" in page
    first, second = page.index("the database first"), page.index("a front end")
    assert first < second
    assert f'href="/runs/{run.pk}/"' in page
    assert f'href="/audit/{requested.sequence}/">its story' in page
    assert "apt-get: no network" in page and "not started" in page
