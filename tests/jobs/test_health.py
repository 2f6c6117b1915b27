"""Health check results become the services' states, damped: one failed check marks a service
degraded and alerts nobody; the third in a row marks it failed and raises one alert (and one
e-mail); later failures add sightings, not alerts; a healthy check recovers it once. A change of
state is audited with what the check said; every check records its time and words."""

import uuid

import pytest
from django.core import mail

from hosts.models import Service
from jobs.health import record_result
from jobs.models import Alert, JobRun, OutputChunk, RunState
from remora_admin.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def service(lab_host, alice):
    alice.email = "alice@example.org"
    alice.save()
    return Service.objects.create(host=lab_host, kind="mysql_master")


def check(host, healthy: bool, said: str) -> JobRun:
    run = JobRun.objects.create(
        batch=uuid.uuid4(), recipe="service_health", params={"service": "mysql_master"},
        script="...", host=host, timeout=60,
        state=RunState.SUCCEEDED if healthy else RunState.FAILED,
        error="" if healthy else "exit status 3",
    )  # fmt: skip
    OutputChunk.objects.create(run=run, offset=0, stream="out", data=f"{said}\n".encode())
    record_result(run)
    return run


def test_failures_are_damped_then_alerted_once_and_recovery_clears_once(
    service, lab_host, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        check(lab_host, True, "healthy: MariaDB answers and takes writes")
        service.refresh_from_db()
        assert service.state == "running" and service.check_note.startswith("healthy:")

        check(lab_host, False, "unhealthy: MariaDB does not answer: connection refused")
        service.refresh_from_db()
        assert (service.state, service.check_failures) == ("degraded", 1)
        assert not Alert.objects.exists() and mail.outbox == []  # one blip alerts nobody

        check(lab_host, False, "unhealthy: MariaDB does not answer")
        check(lab_host, False, "unhealthy: MariaDB does not answer")
        service.refresh_from_db()
        assert (service.state, service.check_failures) == ("failed", 3)
        alert = Alert.objects.get()
        assert alert.title == "MySQL master on lab1 is failing"
        assert "3 checks in a row failed" in alert.detail

        check(lab_host, False, "unhealthy: MariaDB does not answer")
        alert.refresh_from_db()
        assert alert.seen == 2 and Alert.objects.count() == 1

        check(lab_host, True, "healthy: MariaDB answers and takes writes")
    service.refresh_from_db()
    alert.refresh_from_db()
    assert service.state == "running" and service.check_failures == 0
    assert alert.cleared_at is not None
    subjects = [m.subject for m in mail.outbox]
    assert subjects == ["[Remora Admin] MySQL master on lab1 is failing",
                        "[Remora Admin] Recovered: MySQL master on lab1 is failing"]  # fmt: skip
    changes = AuditEvent.objects.filter(action="service.state_changed").order_by("id")
    assert [(e.details["before"], e.details["after"]) for e in changes] == [
        ("unknown", "running"), ("running", "degraded"), ("degraded", "failed"),
        ("failed", "running"),
    ]  # fmt: skip
    assert service.last_checked_at is not None


def test_a_check_of_another_recipe_or_a_dry_run_changes_nothing(service, lab_host):
    run = check(lab_host, True, "healthy")
    run.recipe = "host_health"
    run.save()
    Service.objects.filter(pk=service.pk).update(state="unknown")
    record_result(run)
    service.refresh_from_db()
    assert service.state == "unknown"


def test_a_check_delivered_again_after_it_ran_counts_once(service, lab_host):
    """The queue may deliver a run twice; the second delivery runs nothing and must not count
    the check's failure again (the damping would alert early)."""
    from jobs.tasks import execute_run

    run = check(lab_host, False, "unhealthy: MariaDB does not answer")
    assert execute_run(run.pk).startswith("not queued")  # delivered again: finished already
    service.refresh_from_db()
    assert service.check_failures == 1 and service.state == "degraded"
