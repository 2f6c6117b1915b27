"""Schedules fire each due time exactly once, on the schedule's own clock: the cron preview in
its time zone; daylight-saving nights in America/New_York and Europe/Berlin (a 02:30 schedule
runs once on a spring-forward night and once on a fall-back night); the missed-run policy after
a downtime; skip while the previous run is going; an owner who lost the right disables the
schedule, audited and mailed; bad cron expressions and time zones refused in words."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError

from jobs import schedules
from jobs.models import JobRun, Occurrence, RunState, Schedule
from remora_admin.access.models import Grant
from remora_admin.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

Out = Occurrence.Outcome


def make(owner, host, cron="30 2 * * *", tz="UTC", since=None, **extra) -> Schedule:
    schedule = Schedule.objects.create(
        name=f"s{Schedule.objects.count() + 1}",
        recipe="host_health",
        cron=cron,
        timezone=tz,
        owner=owner,
        checked_until=since or datetime(2026, 1, 1, tzinfo=UTC),
        **extra,
    )
    schedule.hosts.add(host)
    return schedule


def tick_every_minute(start: datetime, end: datetime) -> None:
    """The ticker, once a minute from `start` to `end`, with the clock there."""
    now = start
    while now <= end:
        with time_machine.travel(now, tick=False):
            schedules.tick()
        now += timedelta(minutes=1)


def local_times(schedule: Schedule) -> list[str]:
    tz = ZoneInfo(schedule.timezone)
    return [
        o.scheduled_for.astimezone(tz).strftime("%m-%d %H:%M %Z")
        for o in schedule.occurrences.order_by("scheduled_for")
    ]


def test_the_preview_lists_the_next_runs_in_the_schedules_time_zone():
    after = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    berlin = schedules.next_times("30 2 * * *", "Europe/Berlin", after, 3)
    assert [t.strftime("%Y-%m-%d %H:%M %Z") for t in berlin] == [
        "2026-12-05 02:30 CET", "2026-12-06 02:30 CET", "2026-12-07 02:30 CET",
    ]  # fmt: skip
    assert berlin[0].astimezone(UTC).hour == 1  # not the server's clock: 01:30 UTC


@pytest.mark.parametrize(
    "tz, spring, fall",
    [
        ("America/New_York", datetime(2026, 3, 8), datetime(2026, 11, 1)),
        ("Europe/Berlin", datetime(2026, 3, 29), datetime(2026, 10, 25)),
    ],
)
def test_a_0230_schedule_runs_once_on_each_daylight_saving_night(alice, lab_host, tz, spring, fall):
    zone = ZoneInfo(tz)
    for night in (spring, fall):
        start = datetime(night.year, night.month, night.day, 0, 0, tzinfo=zone)
        schedule = make(alice, lab_host, tz=tz, since=start, skip_while_running=False)
        tick_every_minute(start.astimezone(UTC), (start + timedelta(hours=5)).astimezone(UTC))
        times = local_times(schedule)
        assert len(times) == 1, times
        assert schedule.occurrences.get().outcome == Out.LAUNCHED
        if night == spring:  # 02:30 does not exist: it runs once, right after the change
            assert times[0].endswith("03:00 EDT" if "New_York" in tz else "03:00 CEST")
        else:  # 02:30 (Berlin: twice on the clock) runs once
            assert times[0].endswith("02:30 EST" if "New_York" in tz else "02:30 CEST")


def test_after_a_downtime_skip_says_what_was_missed_once_and_runs_nothing(alice, lab_host):
    schedule = make(alice, lab_host, cron="0 * * * *", since=datetime(2026, 5, 1, 0, 1, tzinfo=UTC))
    with time_machine.travel(datetime(2026, 5, 1, 5, 30, tzinfo=UTC), tick=False):
        assert schedules.tick() == {Out.MISSED: 1}
    [missed] = schedule.occurrences.all()
    assert missed.outcome == Out.MISSED
    assert "01:00 UTC to 2026-05-01 05:00 UTC (5 times)" in missed.note
    assert not JobRun.objects.exists()
    assert AuditEvent.objects.filter(action="schedule.missed").count() == 1
    with time_machine.travel(datetime(2026, 5, 1, 5, 31, tzinfo=UTC), tick=False):
        assert schedules.tick() == {}  # decided once


def test_after_a_downtime_run_once_catches_up_with_one_run(alice, lab_host):
    schedule = make(alice, lab_host, cron="0 * * * *", missed=Schedule.Missed.RUN_ONCE,
                    since=datetime(2026, 5, 1, 0, 1, tzinfo=UTC))  # fmt: skip
    with time_machine.travel(datetime(2026, 5, 1, 5, 30, tzinfo=UTC), tick=False):
        assert schedules.tick() == {Out.MISSED: 1, Out.LAUNCHED: 1}
    outcomes = dict(schedule.occurrences.values_list("outcome", "scheduled_for__hour"))
    assert outcomes == {Out.MISSED: 4, Out.LAUNCHED: 5}
    launched = schedule.occurrences.get(outcome=Out.LAUNCHED)
    assert "catching up once for 5 missed time(s)" in launched.note
    assert JobRun.objects.get().requested_by == alice


def test_a_time_is_skipped_while_the_previous_run_is_still_going(alice, lab_host):
    schedule = make(alice, lab_host, cron="*/5 * * * *", since=datetime(2026, 5, 1, tzinfo=UTC))
    tick_every_minute(
        datetime(2026, 5, 1, 0, 4, tzinfo=UTC), datetime(2026, 5, 1, 0, 11, tzinfo=UTC)
    )
    first, second = schedule.occurrences.order_by("scheduled_for")
    assert first.outcome == Out.LAUNCHED
    run = JobRun.objects.get()
    assert run.state == RunState.QUEUED  # nobody ran it
    assert second.outcome == Out.SKIPPED
    assert second.note == f"the previous run (#{run.pk}) is still going"


def test_an_owner_who_lost_the_right_disables_the_schedule_and_is_told(
    alice, zone, lab_host, django_capture_on_commit_callbacks
):
    boss = type(alice).objects.create_user("zadmin", "zadmin@example.org", "pw-zadmin-1")
    Grant.objects.create(user=boss, role="zone_admin", zone=zone, reason="test")
    alice.email = "alice@example.org"
    alice.save()
    schedule = make(alice, lab_host, cron="* * * * *", since=datetime(2026, 5, 1, tzinfo=UTC))
    Grant.objects.filter(user=alice).delete()

    with (
        time_machine.travel(datetime(2026, 5, 1, 0, 1, 20, tzinfo=UTC), tick=False),
        django_capture_on_commit_callbacks(execute=True),  # the mail goes once committed
    ):
        assert schedules.tick() == {Out.REFUSED: 1}

    schedule.refresh_from_db()
    assert not schedule.enabled
    assert "alice may no longer run it" in schedule.disabled_reason
    assert not JobRun.objects.exists()
    assert AuditEvent.objects.filter(action="schedule.disabled").count() == 1
    [message] = mail.outbox
    assert message.to == ["alice@example.org", "zadmin@example.org"]
    assert schedule.name in message.subject and "no longer run it" in message.body
    with time_machine.travel(datetime(2026, 5, 1, 0, 5, tzinfo=UTC), tick=False):
        assert schedules.tick() == {}  # a disabled schedule fires nothing


@pytest.mark.parametrize(
    "expression, message",
    [
        ("* * * * * *", "a seconds field is not allowed"),
        ("* * * *", "five fields"),
        ("61 * * * *", "is not a valid cron expression"),
        ("", "five fields"),
    ],
)
def test_bad_cron_expressions_are_refused_in_words(expression, message):
    with pytest.raises(ValidationError, match=message):
        schedules.check_cron(expression)


def test_an_unknown_time_zone_is_refused_in_words():
    with pytest.raises(ValidationError, match="not an IANA time zone"):
        schedules.zone_info("Mars/Olympus_Mons")
    assert schedules.check_cron("  30  2 * *   * ") == "30 2 * * *"
