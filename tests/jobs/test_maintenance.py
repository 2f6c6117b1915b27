"""Maintenance windows and freezes: a window is open from its cron time for its duration in its
own time zone; a host-changing schedule fires only inside a window and never in a freeze (said in
the occurrence); a person's host-changing launch in a freeze is refused saying until when, and a
superadmin may override it with a reason (audited); a zone that requires windows refuses
host-changing schedules without one; bad windows and freezes are refused in words; the calendar
shows the week ahead."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.utils import timezone

from jobs import launch as launching
from jobs import maintenance, schedules
from jobs.models import JobRun, Maintenance, Occurrence, Schedule
from jobs.recipes import Category
from remora_admin.audit.models import AuditEvent
from tests.access.helpers import sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def sunday_window(zone):
    """Sundays 02:00-04:00, Berlin time."""
    return Maintenance.objects.create(kind="window", zone=zone, cron="0 2 * * 0",
                                      timezone="Europe/Berlin", duration_minutes=120,
                                      reason="weekly maintenance")  # fmt: skip


@pytest.fixture
def change(make_recipe):
    return make_recipe("touch_it", lambda p: "true", category=Category.OPERATE, changes_host=True)


def berlin(*args) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(*args, tzinfo=ZoneInfo("Europe/Berlin"))


def test_a_window_is_open_from_its_time_for_its_duration_in_its_zone(sunday_window, lab_host):
    assert maintenance.is_open(sunday_window, berlin(2026, 12, 6, 2, 0))
    assert maintenance.is_open(sunday_window, berlin(2026, 12, 6, 3, 59))
    assert not maintenance.is_open(sunday_window, berlin(2026, 12, 6, 4, 0))
    assert not maintenance.is_open(sunday_window, berlin(2026, 12, 7, 2, 30))  # a Monday
    said = maintenance.window_rule(lab_host, berlin(2026, 12, 7, 12, 0))
    assert (
        said == "lab1 is outside its maintenance windows (the next opens Sun 2026-12-13 02:00 CET)"
    )
    assert maintenance.window_rule(lab_host, berlin(2026, 12, 13, 2, 30)) == ""


def test_a_host_changing_schedule_fires_only_inside_its_window(
    alice, lab_host, sunday_window, change
):
    schedule = Schedule.objects.create(name="nightly", recipe="touch_it", owner=alice,
                                       cron="30 * * * *", timezone="Europe/Berlin",
                                       checked_until=berlin(2026, 12, 6, 0, 0))  # fmt: skip
    schedule.hosts.add(lab_host)
    for hour in (0, 1, 2, 3, 4):
        with time_machine.travel(berlin(2026, 12, 6, hour, 30, 5), tick=False):
            schedules.tick()
    outcomes = [(o.scheduled_for.astimezone(berlin(2026, 1, 1).tzinfo).hour, o.outcome)
                for o in schedule.occurrences.order_by("scheduled_for")]  # fmt: skip
    assert outcomes == [(0, "skipped"), (1, "skipped"), (2, "launched"), (3, "skipped"),
                        (4, "skipped")]  # fmt: skip
    skipped = schedule.occurrences.filter(outcome="skipped").order_by("scheduled_for").first()
    assert (
        "outside its maintenance windows (the next opens Sun 2026-12-06 02:00 CET)" in skipped.note
    )
    assert Occurrence.objects.filter(outcome="skipped").count() == 4


def test_a_freeze_refuses_host_changing_launches_saying_until_when(alice, lab_host, zone, change):
    until = timezone.now() + timedelta(hours=5)
    Maintenance.objects.create(kind="freeze", zone=zone, starts_at=timezone.now() - timedelta(1),
                               ends_at=until, reason="release week")  # fmt: skip
    with pytest.raises(launching.LaunchRefused) as refused:
        launching.launch(alice, change, [lab_host], {})
    assert f"lab1 is frozen until {until:%Y-%m-%d %H:%M} UTC (release week)" in str(refused.value)
    assert not JobRun.objects.exists()
    # A read-only recipe is not held by a freeze; an operator's reason overrides nothing.
    from jobs.recipes import get

    assert launching.launch(alice, get("host_health"), [lab_host], {})
    with pytest.raises(launching.LaunchRefused):
        launching.launch(alice, change, [lab_host], {}, override_freeze="please")

    boss = get_user_model().objects.create_superuser("boss", "b@example.org", "pw-boss-12")
    [run] = launching.launch(boss, change, [lab_host], {}, override_freeze="the fix cannot wait")
    event = AuditEvent.objects.get(action="run.freeze_overridden")
    assert event.details["reason"] == "the fix cannot wait" and event.target_id == str(run.pk)


def test_a_frozen_schedule_time_is_skipped_and_says_why(alice, lab_host, zone, change):
    day = datetime(2026, 5, 1, tzinfo=UTC)
    Maintenance.objects.create(kind="freeze", host=lab_host, starts_at=day,
                               ends_at=day + timedelta(days=1), reason="audit")  # fmt: skip
    schedule = Schedule.objects.create(name="s", recipe="touch_it", owner=alice, cron="0 * * * *",
                                       checked_until=day + timedelta(minutes=30))  # fmt: skip
    schedule.hosts.add(lab_host)
    with time_machine.travel(datetime(2026, 5, 1, 1, 0, 5, tzinfo=UTC), tick=False):
        schedules.tick()
    occurrence = schedule.occurrences.get()
    assert occurrence.outcome == "skipped"
    assert occurrence.note == "lab1 is frozen until 2026-05-02 00:00 UTC (audit)"


def test_a_zone_that_requires_windows_refuses_a_host_changing_schedule_without_one(
    zone, lab_host, alice
):
    zone.requires_window = True
    zone.save()
    client = sign_in(alice)
    response = client.post("/schedules/new/?recipe=security_upgrades", {
        "recipe": "security_upgrades", "name": "upgrades", "hosts": [lab_host.pk],
        "cron": "0 3 * * 0", "timezone": "UTC", "missed": "skip", "grace_minutes": "10",
        "enabled": "on"})  # fmt: skip
    assert response.status_code == 400
    assert (
        "requires a maintenance window for such schedules: add one first"
        in response.content.decode()
    )
    assert not Schedule.objects.exists()


@pytest.mark.parametrize(
    "values, message",
    [
        (
            {"kind": "window", "cron": "0 2 * * 0", "duration_minutes": "0"},
            "A window of zero length",
        ),
        ({"kind": "window", "cron": "0 2 * *", "duration_minutes": "60"}, "five fields"),
        (
            {"kind": "freeze", "starts_at": "2026-12-24T18:00", "ends_at": "2026-12-24T08:00"},
            "A freeze ends after it starts.",
        ),
        (
            {"kind": "window", "cron": "0 2 * * 0", "duration_minutes": "60", "host": "HOST"},
            "Choose a zone or one host (not both).",
        ),
    ],
)
def test_bad_windows_and_freezes_are_refused_in_words(alice, zone, lab_host, values, message):
    client = sign_in(alice)
    data = {"zone": zone.pk, "reason": "test", "timezone": "UTC", **values}
    if data.get("host") == "HOST":
        data["host"] = lab_host.pk
    response = client.post("/maintenance/new/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Maintenance.objects.exists()


def test_a_freeze_is_read_in_its_own_time_zone_and_the_calendar_shows_the_week(
    alice, zone, lab_host
):
    client = sign_in(alice)
    start = timezone.now().astimezone(berlin(2026, 1, 1).tzinfo) + timedelta(days=1)
    day = start.strftime("%Y-%m-%d")
    response = client.post("/maintenance/new/", {
        "kind": "freeze", "zone": zone.pk, "reason": "release week", "timezone": "Europe/Berlin",
        "starts_at": f"{day}T08:00", "ends_at": f"{day}T18:00"})  # fmt: skip
    assert response.status_code == 302
    freeze = Maintenance.objects.get()
    assert freeze.starts_at.astimezone(berlin(2026, 1, 1).tzinfo).hour == 8
    assert AuditEvent.objects.filter(action="maintenance.created").count() == 1
    page = client.get("/maintenance/").content.decode()
    assert "Freeze for zone lab: release week" in page
    client.post(f"/maintenance/{freeze.pk}/delete/")
    assert not Maintenance.objects.exists()
    assert AuditEvent.objects.filter(action="maintenance.deleted").count() == 1
