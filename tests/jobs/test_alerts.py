"""Alerts: one per condition until it recovers (no storm), one audit event and one e-mail each
way; a missed schedule, a failed scheduled run, a run that did not start within its grace and a
changed host key each raise theirs and clear it on recovery; acknowledging is the zone's
operators' and audited; people see only their zones' alerts."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail

from jobs import alerts, schedules
from jobs.hostkeys import flag_host_key, trust_host_key
from jobs.models import Alert, JobRun, Schedule
from jobs.tasks import execute_run
from remora_admin.access.models import Grant
from remora_admin.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_mail(alice):
    alice.email = "alice@example.org"
    alice.save()
    return alice


def events(action: str) -> int:
    return AuditEvent.objects.filter(action=action).count()


def test_one_alert_per_condition_until_it_recovers(
    lab_host, admin_mail, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            alerts.raise_alert(
                Alert.Kind.CHECK, "check:x", "MariaDB does not answer", host=lab_host
            )
    alert = Alert.objects.get()
    assert alert.seen == 3 and alert.cleared_at is None
    assert events("alert.raised") == 1
    assert [m.subject for m in mail.outbox] == ["[Remora Admin] MariaDB does not answer"]
    assert mail.outbox[0].to == ["alice@example.org"]  # the zone's admin

    with django_capture_on_commit_callbacks(execute=True):
        alerts.clear("check:x", "answers again")
        assert alerts.clear("check:x") is None  # cleared once
    alert.refresh_from_db()
    assert alert.cleared_at is not None and alert.open_key is None
    assert events("alert.cleared") == 1
    assert mail.outbox[-1].subject == "[Remora Admin] Recovered: MariaDB does not answer"

    alerts.raise_alert(Alert.Kind.CHECK, "check:x", "MariaDB does not answer", host=lab_host)
    assert Alert.objects.count() == 2  # a new episode is a new alert


def make(owner, host, **extra) -> Schedule:
    values = {"recipe": "host_health", "cron": "0 * * * *", **extra}
    schedule = Schedule.objects.create(name="nightly", owner=owner, **values)
    schedule.hosts.add(host)
    return schedule


def test_a_missed_schedule_raises_its_alert_and_running_on_time_clears_it(alice, lab_host):
    schedule = make(alice, lab_host, checked_until=datetime(2026, 5, 1, 0, 1, tzinfo=UTC),
                    skip_while_running=False)  # fmt: skip
    with time_machine.travel(datetime(2026, 5, 1, 3, 30, tzinfo=UTC), tick=False):
        schedules.tick()
    alert = Alert.objects.get(schedule=schedule)
    assert alert.kind == Alert.Kind.MISSED and alert.title == "Schedule nightly did not run"
    assert "01:00 UTC to 2026-05-01 03:00 UTC (3 times)" in alert.detail

    with time_machine.travel(datetime(2026, 5, 1, 4, 0, 30, tzinfo=UTC), tick=False):
        schedules.tick()
    alert.refresh_from_db()
    assert alert.cleared_at is not None


def test_a_run_that_did_not_start_within_the_grace_raises_an_alert(alice, lab_host):
    make(alice, lab_host, checked_until=datetime(2026, 5, 1, 0, 59, tzinfo=UTC), grace_minutes=5)
    with time_machine.travel(datetime(2026, 5, 1, 1, 0, 10, tzinfo=UTC), tick=False):
        schedules.tick()
    assert JobRun.objects.get().state == "queued"  # no worker took it
    with time_machine.travel(datetime(2026, 5, 1, 1, 4, tzinfo=UTC), tick=False):
        schedules.tick()
    assert not Alert.objects.exists()  # still within the grace
    with time_machine.travel(datetime(2026, 5, 1, 1, 6, tzinfo=UTC), tick=False):
        schedules.tick()
        schedules.tick()
    alert = Alert.objects.get()
    assert alert.title == "Schedule nightly did not start within 5 min"
    assert "is still queued: is a worker running?" in alert.detail
    assert alert.seen == 2

    execute_run(JobRun.objects.get().pk)  # a worker comes back and runs it
    alert.refresh_from_db()
    assert alert.cleared_at is not None


def test_a_failed_scheduled_run_raises_an_alert_and_a_success_clears_it(
    alice, lab_host, make_recipe, tmp_path
):
    flag = tmp_path / "broken"
    flag.touch()
    make_recipe("flaky", lambda p: f"if test -e {flag}; then echo broken >&2; exit 2; fi")
    schedule = make(alice, lab_host, recipe="flaky", cron="* * * * *",
                    checked_until=datetime(2026, 5, 1, tzinfo=UTC))  # fmt: skip
    with time_machine.travel(datetime(2026, 5, 1, 0, 1, 5, tzinfo=UTC), tick=False):
        schedules.tick()
    execute_run(JobRun.objects.get().pk)
    alert = Alert.objects.get(kind=Alert.Kind.RUN_FAILED)
    assert alert.title == f"Schedule {schedule.name} failed on lab1"
    assert "exit status 2" in alert.detail

    flag.unlink()
    with time_machine.travel(datetime(2026, 5, 1, 0, 2, 5, tzinfo=UTC), tick=False):
        schedules.tick()
    execute_run(JobRun.objects.order_by("-pk").first().pk)
    alert.refresh_from_db()
    assert alert.cleared_at is not None


def test_a_changed_host_key_raises_an_alert_and_trusting_a_key_clears_it(
    alice, lab_host, sshd_host
):
    flag_host_key(
        lab_host, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyOtherKeyOtherKeyOtherKeyOth"
    )
    alert = Alert.objects.get(kind=Alert.Kind.HOST_KEY)
    assert alert.title == "lab1 presented a host key other than the pinned one"

    trust_host_key(lab_host, sshd_host.host_public_key, actor=alice)
    alert.refresh_from_db()
    assert alert.cleared_at is not None


def test_acknowledging_is_for_the_zones_operators_and_is_audited(alice, carol, lab_host, zone):
    alert = alerts.raise_alert(Alert.Kind.CHECK, "check:y", "Disk full", host=lab_host)
    stranger = get_user_model().objects.create_user("zed", password="zed-pass-1")

    with pytest.raises(alerts.NotAllowedToAcknowledge):
        alerts.acknowledge(stranger, alert)
    alerts.acknowledge(carol, alert)  # an operator of the zone

    alert.refresh_from_db()
    assert alert.acknowledged_by == carol
    assert events("alert.acknowledged") == 1
    assert list(alerts.visible(carol)) == [alert]
    assert list(alerts.visible(stranger)) == []
    Grant.objects.filter(user=carol).delete()
    carol = get_user_model().objects.get(pk=carol.pk)
    assert list(alerts.visible(carol)) == []


def test_the_alert_page_and_the_dashboard_show_open_alerts(alice, lab_host, client):
    alerts.raise_alert(Alert.Kind.CHECK, "check:z", "Perlbal pool member down", host=lab_host)
    client.force_login(alice)
    page = client.get("/alerts/").content.decode()
    assert "Perlbal pool member down" in page and "I'm on it" in page
    dashboard = client.get("/").content.decode()
    assert 'id="open-alerts"' in dashboard and "Perlbal pool member down" in dashboard

    response = client.post(f"/alerts/{Alert.objects.get().pk}/acknowledge/")
    assert response.status_code == 302
    assert "alice" in client.get("/alerts/").content.decode()
