"""Schedules: a recipe that runs by itself, on a cron expression in an IANA time zone.

The ticker calls `tick()` every few seconds. For each enabled schedule it lists the times that
fell due since it last looked (cronsim, which follows Debian's cron across daylight-saving
changes: a time skipped by the clock runs once just after the change, a time the clock repeats
runs once) and decides each one by inserting its `Occurrence` row: the row is unique per
schedule and time, so when two ticker processes race, one insert wins and the other does
nothing. Deciding and launching happen in one transaction: a ticker that dies in between leaves
nothing, and the next tick decides again.

What is decided for a time:
- on time (within the schedule's grace): launched through `launch(...)` as the owner, the
  policy asked then; skipped while the schedule's previous run is still going (when it says
  so) or when no host matches;
- late (the scheduler was down past the grace): missed, said once for the whole span; with
  "run once to catch up", the latest missed time runs once instead, when nothing is on time.
An owner who lost the right disables the schedule: audited, and the owner and the zone's admins
are told by e-mail.
"""

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from cronsim import CronSim
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from hosts.models import Host
from remora_admin.access.policy import Action, people_who_may
from remora_admin.audit.log import record

from . import alerts, maintenance
from .cron import check_cron, next_times, zone_info
from .launch import LaunchRefused, NotAllowed, launch
from .models import FINISHED, Alert, JobRun, Maintenance, Occurrence, Schedule
from .recipes import get

log = logging.getLogger(__name__)
Out = Occurrence.Outcome
HORIZON = 1000  # due times looked at per schedule and tick (a long downtime is said in one row)
EVENTS = {
    Out.LAUNCHED: "schedule.fired",
    Out.SKIPPED: "schedule.skipped",
    Out.REFUSED: "schedule.refused",
}


def due_times(schedule: Schedule, now: datetime) -> list[datetime]:
    """The times (UTC) after the schedule's cursor and not after `now`, oldest first."""
    start = schedule.checked_until.astimezone(zone_info(schedule.timezone))
    found = []
    for when in CronSim(schedule.cron, start):
        if when > now or len(found) >= HORIZON:
            break
        found.append(when.astimezone(UTC))
    return found


def targets(schedule: Schedule) -> list[Host]:
    """The hosts it runs on now: those named, else every active host with its service kind."""
    if schedule.service_kind:
        hosts = Host.objects.filter(active=True, services__kind=schedule.service_kind)
    else:
        hosts = schedule.hosts.filter(active=True)
    return list(hosts.select_related("zone", "credential").distinct().order_by("name"))


def tick(now: datetime | None = None) -> dict[str, int]:
    """Decide every due time of every enabled schedule, exactly once across processes; then
    raise the alert of each launched time whose runs have not started within its grace."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    late = alerts.late_starts(now)
    if late:
        counts["late"] = late
    for schedule in Schedule.objects.filter(enabled=True).select_related("owner"):
        try:
            for outcome in _decide_due(schedule, now):
                counts[outcome] = counts.get(outcome, 0) + 1
        except Exception:  # one broken schedule never stops the others (nor the ticker)
            log.exception("Schedule %s could not be decided", schedule.pk)
    return counts


def _decide_due(schedule: Schedule, now: datetime) -> list[str]:
    due = due_times(schedule, now)
    if not due:
        return []
    grace = timedelta(minutes=schedule.grace_minutes)
    late = [t for t in due if now - t > grace]
    on_time = [t for t in due if now - t <= grace]
    outcomes = []
    if late:
        catch_up = schedule.missed == Schedule.Missed.RUN_ONCE and not on_time
        missed = late[:-1] if catch_up else late
        if missed:
            outcomes += _missed(schedule, missed)
        if catch_up:
            outcomes += _fire(schedule, late[-1], catching_up=len(late))
    for when in on_time:
        outcomes += _fire(schedule, when)
        schedule.refresh_from_db(fields=["enabled"])
        if not schedule.enabled:
            break
    # Move the cursor on; a racing ticker that moved it already leaves it where it is.
    Schedule.objects.filter(pk=schedule.pk, checked_until=schedule.checked_until).update(
        checked_until=due[-1]
    )
    return outcomes


def _claim(schedule: Schedule, when: datetime, outcome: str, note: str = "") -> Occurrence | None:
    """Insert the occurrence row, in the caller's transaction; None when another process has
    decided this time already."""
    try:
        with transaction.atomic():
            return Occurrence.objects.create(
                schedule=schedule, scheduled_for=when, outcome=outcome, note=note[:300]
            )
    except IntegrityError:
        return None


def _missed(schedule: Schedule, times: list[datetime]) -> list[str]:
    span = f"{_local(schedule, times[0])}" + (
        f" to {_local(schedule, times[-1])} ({len(times)} times)" if len(times) > 1 else ""
    )
    note = f"missed {span}: the scheduler was not running within the grace time"
    with transaction.atomic():
        occurrence = _claim(schedule, times[-1], Out.MISSED, note)
        if occurrence is None:
            return []
        record(
            "schedule.missed",
            actor_name="scheduler",
            target=schedule,
            details={"from": times[0].isoformat(), "to": times[-1].isoformat(),
                     "count": len(times), "policy": schedule.missed},
        )  # fmt: skip
        alerts.raise_alert(
            Alert.Kind.MISSED,
            f"schedule:{schedule.pk}:missed",
            f"Schedule {schedule.name} did not run",
            note[0].upper() + note[1:],
            schedule=schedule,
        )
    return [Out.MISSED]


def _fire(schedule: Schedule, when: datetime, catching_up: int = 0) -> list[str]:
    with transaction.atomic():
        occurrence = _claim(schedule, when, Out.LAUNCHED)
        if occurrence is None:
            return []
        note, outcome, batch = _launch(schedule, occurrence, catching_up)
        Occurrence.objects.filter(pk=occurrence.pk).update(
            outcome=outcome, note=note[:300], batch=batch
        )
        if outcome == Out.LAUNCHED and not catching_up:
            alerts.clear(f"schedule:{schedule.pk}:missed", f"it ran on time at {when:%H:%M} UTC")
        record(
            EVENTS[outcome],
            actor_name="scheduler",
            target=schedule,
            details={"scheduled_for": when.isoformat(), "outcome": outcome, "note": note,
                     "batch": str(batch) if batch else None},
        )  # fmt: skip
    return [outcome]


def _launch(schedule: Schedule, occurrence: Occurrence, catching_up: int) -> tuple:
    """Launch the occurrence's runs: (note, outcome, batch)."""
    recipe = get(schedule.recipe)
    if recipe is None:
        return f"the recipe {schedule.recipe} no longer exists", Out.REFUSED, None
    if schedule.skip_while_running:
        going = (
            JobRun.objects.filter(
                batch__in=schedule.occurrences.exclude(batch=None).values("batch")
            )  # fmt: skip
            .exclude(state__in=FINISHED)
            .order_by("pk")
            .first()
        )
        if going is not None:
            return f"the previous run (#{going.pk}) is still going", Out.SKIPPED, None
    hosts = targets(schedule)
    if not hosts:
        return "no active host to run on", Out.SKIPPED, None
    held = []
    if recipe.changes_host:  # windows and freezes: only where the host may be changed now
        rules = {h.pk: maintenance.window_rule(h, timezone.now()) for h in hosts}
        held = [rule for rule in rules.values() if rule]
        hosts = [h for h in hosts if not rules[h.pk]]
        if not hosts:
            return "; ".join(held), Out.SKIPPED, None
    try:
        runs = launch(schedule.owner, recipe, hosts, dict(schedule.params), second_factor=True)
    except NotAllowed as refused:
        _disable(schedule, f"{schedule.owner} may no longer run it: {refused}")
        return f"refused by the policy: {refused}", Out.REFUSED, None
    except LaunchRefused as refused:
        return f"refused: {refused}", Out.REFUSED, None
    note = f"{len(runs)} run(s) on {', '.join(h.name for h in hosts)}"
    if held:
        note += f"; not on: {'; '.join(held)}"
    if catching_up:
        note += f", catching up once for {catching_up} missed time(s)"
    return note, Out.LAUNCHED, runs[0].batch


def _disable(schedule: Schedule, reason: str) -> None:
    """Disable the schedule (audited) and tell its owner and the admins of its hosts' zones."""
    Schedule.objects.filter(pk=schedule.pk).update(enabled=False, disabled_reason=reason[:300])
    schedule.enabled = False
    record(
        "schedule.disabled",
        actor_name="scheduler",
        target=schedule,
        details={"reason": reason, "owner": str(schedule.owner or "")},
    )
    zones = {h.zone for h in targets(schedule)}
    people = {schedule.owner} if schedule.owner else set()
    for zone in zones:
        people.update(people_who_may(Action.MANAGE_SCHEDULES, zone))
    addresses = sorted({p.email for p in people if p is not None and p.email})
    if addresses:
        transaction.on_commit(lambda: _mail_disabled(schedule.name, reason, addresses))


def _mail_disabled(name: str, reason: str, addresses: list[str]) -> None:
    try:
        send_mail(
            f"[Remora Admin] Schedule {name} was disabled",
            f"The schedule {name} was disabled and will not run until someone enables it.\n\n"
            f"Why: {reason}\n",
            settings.DEFAULT_FROM_EMAIL,
            addresses,
        )
    except OSError as error:  # the audit event holds it; a mail server down stops nothing
        log.warning("Could not mail that schedule %s was disabled: %s", name, error)


def _local(schedule: Schedule, when: datetime) -> str:
    return when.astimezone(zone_info(schedule.timezone)).strftime("%Y-%m-%d %H:%M %Z")


def describe(schedule: Schedule, now: datetime | None = None, count: int = 5) -> list[str]:
    """The next `count` runs in the schedule's time zone, as people read them."""
    now = now or timezone.now()
    return [
        t.strftime("%a %Y-%m-%d %H:%M %Z")
        for t in next_times(
            schedule.cron, schedule.timezone, max(now, schedule.checked_until), count
        )  # fmt: skip
    ]


def save(
    actor: Any,
    values: dict[str, Any],
    hosts: list[Host],
    recipe_name: str,
    params: dict[str, Any],
    *,
    instance: Schedule | None = None,
    request=None,
) -> Schedule:
    """Create or change a schedule with its audit event, in one transaction. A new schedule, or
    one whose time changed, looks only forward: times already past are not due."""
    fields = ("name", "service_kind", "cron", "timezone", "missed", "skip_while_running",
              "grace_minutes", "enabled")  # fmt: skip
    with transaction.atomic():
        schedule = instance or Schedule(owner=actor, checked_until=timezone.now())
        before = _describe_row(schedule) if instance is not None else None
        for name in fields:
            setattr(schedule, name, values[name])
        schedule.recipe, schedule.params = recipe_name, params
        if before is not None and (
            before["cron"] != schedule.cron or before["timezone"] != schedule.timezone
        ):
            schedule.checked_until = timezone.now()
        if schedule.enabled:
            schedule.disabled_reason = ""
        schedule.save()
        schedule.hosts.set([] if schedule.service_kind else hosts)
        after = _describe_row(schedule)
        if before is None:
            details: dict[str, Any] = {"after": after}
        else:
            changed = sorted(k for k in after if before.get(k) != after.get(k))
            details = {"before": {k: before[k] for k in changed},
                       "after": {k: after[k] for k in changed}}  # fmt: skip
        record(
            "schedule.created" if before is None else "schedule.updated",
            request=request,
            actor=actor,
            target=schedule,
            details=details,
        )
    return schedule


def _describe_row(schedule: Schedule) -> dict[str, Any]:
    hosts = sorted(h.name for h in schedule.hosts.all()) if schedule.pk else []
    return {
        "name": schedule.name, "recipe": schedule.recipe, "params": schedule.params,
        "hosts": hosts, "service_kind": schedule.service_kind, "cron": schedule.cron,
        "timezone": schedule.timezone, "missed": schedule.missed,
        "skip_while_running": schedule.skip_while_running,
        "grace_minutes": schedule.grace_minutes, "enabled": schedule.enabled,
        "owner": str(schedule.owner or ""),
    }  # fmt: skip


HEALTH_CRON = "*/5 * * * *"


def ensure_health_checks(owner: Any, cron: str = HEALTH_CRON) -> list[Schedule]:
    """The built-in health schedules, as `owner`: `service_health` on every host of each
    service kind every five minutes, and every active host's disk usage every half hour.
    Creates the missing ones (audited); leaves existing ones as people may have changed them.
    Returns those it created."""
    from hosts.models import ServiceKind

    created = []
    for kind in ServiceKind.values:
        name = f"health-{kind.replace('_', '-')}"
        if Schedule.objects.filter(name=name).exists():
            continue
        values = {"name": name, "service_kind": kind, "cron": check_cron(cron),
                  "timezone": "UTC", "missed": Schedule.Missed.SKIP, "skip_while_running": True,
                  "grace_minutes": 5, "enabled": True}  # fmt: skip
        created.append(
            save(owner, values, [], "service_health", {"service": kind, "lag_limit": 60})
        )
    hosts = list(Host.objects.filter(active=True))
    if hosts and not Schedule.objects.filter(name="health-disk").exists():
        values = {"name": "health-disk", "service_kind": "", "cron": "*/30 * * * *",
                  "timezone": "UTC", "missed": Schedule.Missed.SKIP, "skip_while_running": True,
                  "grace_minutes": 10, "enabled": True}  # fmt: skip
        # A filesystem over 90 % fails the run: the schedule's alert for that host says so.
        created.append(save(owner, values, hosts, "disk_usage", {"threshold": 90}))
    return created


def ensure_demo_maintenance(owner: Any) -> list[str]:
    """The demo's maintenance, as `owner` (make run with the lab up): beamrider's nightly and
    Sunday windows, a nightly MariaDB backup inside the first, weekly security upgrades inside
    the second, and the health checks. Creates what is missing; says what it made."""
    from hosts.models import Host as Inventory
    from remora_admin.access.models import Zone

    made = []
    beamrider = Zone.objects.filter(name="beamrider").first()
    host = Inventory.objects.filter(name="beamrider").first()
    if beamrider is None or host is None:
        return made
    for cron, minutes, reason in (
        ("0 1 * * *", 120, "nightly: backups"),
        ("0 2 * * 0", 240, "Sundays: security upgrades and reboots"),
    ):
        if not Maintenance.objects.filter(zone=beamrider, cron=cron).exists():
            window = Maintenance.objects.create(
                kind=Maintenance.Kind.WINDOW, zone=beamrider, cron=cron, timezone="UTC",
                duration_minutes=minutes, reason=reason, created_by=owner,
            )  # fmt: skip
            after = {"cron": cron, "minutes": minutes, "reason": reason}
            record("maintenance.created", actor=owner, target=window, zone=beamrider.name,
                   details={"after": after})  # fmt: skip
            made.append(f"window {reason}")
    demo = (
        ("beamrider-backup", "mariadb_backup", "30 1 * * *", {"keep": 7}),
        ("beamrider-upgrades", "security_upgrades", "30 2 * * 0", {}),
    )
    for name, recipe, cron, given in demo:
        if Schedule.objects.filter(name=name).exists():
            continue
        form = get(recipe).form(given, host=host, fill_missing=True)
        if not form.is_valid():
            made.append(f"not {name}: {form.errors.as_text()}")
            continue
        params = storable(form.cleaned_data)
        values = {"name": name, "service_kind": "", "cron": cron, "timezone": "UTC",
                  "missed": Schedule.Missed.RUN_ONCE, "skip_while_running": True,
                  "grace_minutes": 30, "enabled": True}  # fmt: skip
        save(owner, values, [host], recipe, params)
        made.append(f"schedule {name}")
    made += [f"schedule {s.name}" for s in ensure_health_checks(owner)]
    return made


def storable(values: dict[str, Any]) -> dict[str, Any]:
    """A form's cleaned values as a schedule keeps them (JSON: other types as text)."""
    simple = str | int | float | bool | None | list
    return {k: (v if isinstance(v, simple) else str(v)) for k, v in values.items()}


def set_enabled(actor: Any, schedule: Schedule, enable: bool, *, request=None) -> None:
    """Turn a schedule on or off (audited by `save`). Enabled again, it looks forward from now,
    like a new schedule: what it missed while off is not caught up."""
    values = {f: getattr(schedule, f) for f in ("name", "service_kind", "cron", "timezone",
              "missed", "skip_while_running", "grace_minutes")}  # fmt: skip
    values["enabled"] = enable
    if enable and not schedule.enabled:
        Schedule.objects.filter(pk=schedule.pk).update(checked_until=timezone.now())
        schedule.refresh_from_db()
    save(actor, values, list(schedule.hosts.all()), schedule.recipe, schedule.params,
         instance=schedule, request=request)  # fmt: skip
