"""Maintenance windows and freezes: when host-changing work may happen.

A window is recurring (opens on a cron expression in a time zone, stays open for a duration);
a freeze is one span of time. Both belong to a zone or to one host. A schedule of a recipe that
changes hosts fires on a host only while one of its windows is open (when the host or its zone
has windows, or its zone requires them) and never during a freeze; a person's launch of such a
recipe during a freeze is refused, saying until when, unless a superadmin overrides it with a
reason (audited in `launch`).
"""

from datetime import datetime, timedelta

from cronsim import CronSim
from django.db.models import Q

from hosts.models import Host

from .cron import zone_info
from .models import Maintenance

M = Maintenance.Kind


def _for(host: Host, kind: str):
    return Maintenance.objects.filter(Q(host=host) | Q(zone_id=host.zone_id), kind=kind)


def last_opening(window: Maintenance, when: datetime) -> datetime:
    """The latest time the window opened at or before `when`."""
    tz = zone_info(window.timezone)
    start = (when + timedelta(minutes=1)).astimezone(tz).replace(second=0, microsecond=0)
    return next(CronSim(window.cron, start, reverse=True))


def is_open(window: Maintenance, when: datetime) -> bool:
    opened = last_opening(window, when)
    return opened <= when < opened + timedelta(minutes=window.duration_minutes or 0)


def next_opening(window: Maintenance, after: datetime) -> datetime:
    return next(CronSim(window.cron, after.astimezone(zone_info(window.timezone))))


def freeze(host: Host, when: datetime) -> Maintenance | None:
    """The freeze holding `host` at `when`, the one ending last."""
    return (
        _for(host, M.FREEZE)
        .filter(starts_at__lte=when, ends_at__gt=when)
        .order_by("-ends_at")
        .first()
    )


def window_rule(host: Host, when: datetime) -> str:
    """Why a schedule may not change `host` at `when`, in words; "" when it may."""
    frozen = freeze(host, when)
    if frozen is not None:
        return f"{host.name} is frozen until {frozen.ends_at:%Y-%m-%d %H:%M} UTC ({frozen.reason})"
    windows = list(_for(host, M.WINDOW))
    if not windows:
        if host.zone.requires_window:
            return f"{host.name}'s zone requires a maintenance window and has none"
        return ""
    if any(is_open(w, when) for w in windows):
        return ""
    soonest = min(next_opening(w, when) for w in windows)
    return (
        f"{host.name} is outside its maintenance windows (the next opens "
        f"{soonest:%a %Y-%m-%d %H:%M %Z})"
    )


def freeze_refusal(host: Host, when: datetime) -> str:
    """Why a person may not change `host` now, in words; "" when they may."""
    frozen = freeze(host, when)
    if frozen is None:
        return ""
    return (
        f"{host.name} is frozen until {frozen.ends_at:%Y-%m-%d %H:%M} UTC ({frozen.reason}); "
        "a superadmin may override with a reason."
    )


def missing_windows(hosts: list[Host]) -> list[str]:
    """Hosts whose zone requires a window for host-changing schedules and that have none."""
    return [h.name for h in hosts if h.zone.requires_window and not _for(h, M.WINDOW).exists()]


def upcoming(hosts: list[Host], start: datetime, days: int = 7) -> list[dict]:
    """The windows and freezes touching `hosts` in the `days` after `start`, in time order:
    what the calendar draws."""
    end = start + timedelta(days=days)
    zones = {h.zone_id for h in hosts}
    items = []
    for m in Maintenance.objects.filter(Q(host__in=hosts) | Q(zone_id__in=zones)).select_related(
        "host", "zone"
    ):
        if m.kind == M.FREEZE:
            if m.starts_at < end and m.ends_at > start:
                items.append({"item": m, "start": m.starts_at, "end": m.ends_at})
            continue
        opening = last_opening(m, start)
        if opening + timedelta(minutes=m.duration_minutes or 0) <= start:
            opening = next_opening(m, start)
        while opening < end:
            items.append({"item": m, "start": opening,
                          "end": opening + timedelta(minutes=m.duration_minutes or 0)})  # fmt: skip
            opening = next_opening(m, opening)
    return sorted(items, key=lambda i: i["start"])
