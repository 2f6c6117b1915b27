"""Alerts: raised once per condition, cleared once on recovery, acknowledged by a person.

`raise_alert` opens the condition's alert, or counts one more sighting of the open one (no
storm: one alert, one e-mail, one audit event per condition until it recovers). `clear` closes
it when the condition recovers (audited, and the same people are told). Mail goes to the
admins of the alert's zone (the people who may edit its inventory) once the change is
committed; a mail server that is down stops nothing (the audit event holds the alert).
"""

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.http import HttpRequest
from django.utils import timezone

from hosts.models import Host
from remora_admin.access.policy import Action, decide, holds_globally, people_who_may, zones_where
from remora_admin.audit.log import record

from .models import FINISHED, Alert, JobRun, Occurrence, RunState, Schedule

log = logging.getLogger(__name__)


class NotAllowedToAcknowledge(Exception):
    pass


def raise_alert(
    kind: str,
    key: str,
    title: str,
    detail: str = "",
    *,
    host: Host | None = None,
    schedule: Schedule | None = None,
) -> Alert:
    """Open the alert for condition `key`, or count one more sighting of the open one."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    kind=kind, key=key, open_key=key, title=title[:300], detail=detail,
                    host=host, schedule=schedule,
                )  # fmt: skip
        except IntegrityError:
            Alert.objects.filter(open_key=key).update(
                seen=F("seen") + 1, last_seen_at=timezone.now(), detail=detail
            )
            return Alert.objects.get(open_key=key)
        zone = alert.zone
        record(
            "alert.raised",
            actor_name="console",
            target=alert,
            zone=zone.name if zone else "",
            details={"kind": kind, "key": key, "title": title, "detail": detail[:2000]},
        )
        _tell(alert, f"[Remora Admin] {title}", f"{title}\n\n{detail}\n")
    return alert


def clear(key: str, note: str = "") -> Alert | None:
    """The condition `key` recovered: close its open alert (None when none was open)."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(open_key=key).first()
        if alert is None:
            return None
        Alert.objects.filter(pk=alert.pk).update(open_key=None, cleared_at=timezone.now())
        zone = alert.zone
        record(
            "alert.cleared",
            actor_name="console",
            target=alert,
            zone=zone.name if zone else "",
            details={"kind": alert.kind, "key": key, "note": note, "seen": alert.seen},
        )
        _tell(alert, f"[Remora Admin] Recovered: {alert.title}", f"{alert.title}\n\n{note}\n")
    alert.refresh_from_db()
    return alert


def acknowledge(actor: Any, alert: Alert, *, request: HttpRequest | None = None) -> None:
    """A person says they are on it (whoever may operate in the alert's zone)."""
    decision = decide(actor, Action.OPERATE, alert) if alert.zone else None
    allowed = decision.allowed if decision else holds_globally(actor, Action.OPERATE)
    if not allowed:
        raise NotAllowedToAcknowledge(
            decision.message if decision else "Only a superadmin acknowledges this alert."
        )
    with transaction.atomic():
        moved = Alert.objects.filter(pk=alert.pk, acknowledged_at=None).update(
            acknowledged_by=actor, acknowledged_at=timezone.now()
        )
        if moved:
            record(
                "alert.acknowledged",
                request=request,
                actor=actor,
                target=alert,
                zone=alert.zone.name if alert.zone else "",
                details={"kind": alert.kind, "key": alert.key, "title": alert.title},
            )
    alert.refresh_from_db()


def visible(user: Any):
    """The alerts `user` may see: those of the zones they see (zone-less ones: global roles)."""
    zones = zones_where(user, Action.VIEW)
    alerts = Alert.objects.select_related("host__zone", "schedule", "acknowledged_by")
    seen = Q(host__zone__in=zones) | Q(schedule__hosts__zone__in=zones)
    if holds_globally(user, Action.VIEW):
        seen |= Q(host__isnull=True, schedule__isnull=True)
    return alerts.filter(seen).distinct()


def _tell(alert: Alert, subject: str, body: str) -> None:
    zone = alert.zone
    people = people_who_may(Action.EDIT_INVENTORY, zone)
    if zone is None:  # no zone of its own: only those who hold the right everywhere
        people = [p for p in people if holds_globally(p, Action.EDIT_INVENTORY)]
    addresses = sorted({p.email for p in people if p.email})
    if addresses:
        transaction.on_commit(lambda: _send(subject, body, addresses))


def _send(subject: str, body: str, addresses: list[str]) -> None:
    try:
        send_mail(subject[:200], body, settings.DEFAULT_FROM_EMAIL, addresses)
    except OSError as error:
        log.warning("Could not mail an alert (%s): %s", subject, error)


# --- Scheduled runs -----------------------------------------------------------------------------


def after_scheduled_run(run: JobRun) -> None:
    """A run a schedule launched has finished: a failure raises the schedule's alert for that
    host; a success clears it, and the schedule's "did not start" alert too."""
    occurrence = Occurrence.objects.filter(batch=run.batch).select_related("schedule").first()
    if occurrence is None or run.state not in FINISHED:
        return
    schedule = occurrence.schedule
    key = f"schedule:{schedule.pk}:failed:{run.host_id}"
    if run.state == RunState.SUCCEEDED:
        clear(key, f"run #{run.pk} succeeded")
        clear(f"schedule:{schedule.pk}:late", f"run #{run.pk} ran")
        return
    raise_alert(
        Alert.Kind.RUN_FAILED,
        key,
        f"Schedule {schedule.name} failed on {run.host.name}",
        f"Run #{run.pk} ({run.recipe}) {run.get_state_display().lower()}: {run.error}",
        host=run.host,
        schedule=schedule,
    )


def late_starts(now) -> int:
    """Times a schedule launched whose runs have not started within its grace: each raises the
    schedule's "did not start" alert (a worker down, an approval nobody gave)."""
    raised = 0
    waiting = JobRun.objects.filter(
        state__in=[RunState.QUEUED, RunState.AWAITING_APPROVAL], batch__isnull=False
    ).values("batch")
    for occurrence in Occurrence.objects.filter(
        outcome=Occurrence.Outcome.LAUNCHED, batch__in=waiting
    ).select_related("schedule"):
        schedule = occurrence.schedule
        if now - occurrence.scheduled_for <= timedelta(minutes=schedule.grace_minutes):
            continue
        run = occurrence.runs.filter(state__in=[RunState.QUEUED, RunState.AWAITING_APPROVAL])
        first = run.first()
        why = (
            "waits for a second person's approval"
            if first.state == RunState.AWAITING_APPROVAL
            else "is still queued: is a worker running?"
        )
        raise_alert(
            Alert.Kind.MISSED,
            f"schedule:{schedule.pk}:late",
            f"Schedule {schedule.name} did not start within {schedule.grace_minutes} min",
            f"Run #{first.pk}, due {occurrence.scheduled_for:%Y-%m-%d %H:%M} UTC, {why}",
            schedule=schedule,
        )
        raised += 1
    return raised
