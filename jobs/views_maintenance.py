"""Maintenance windows and freezes, and the seven days ahead: when hosts may be changed by
schedules, when nobody may change them, and which scheduled host-changing runs are coming."""

from datetime import timedelta

from django.contrib import messages
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from hosts.changes import snapshot
from hosts.models import Host
from remora_admin.access.guards import require, requires
from remora_admin.access.policy import Action, can, scope, zones_where
from remora_admin.audit.log import record

from . import maintenance, recipes, schedules
from .forms import MaintenanceForm
from .models import Maintenance, Schedule

DAYS = 7


def _visible(request: HttpRequest):
    zones = zones_where(request.user, Action.VIEW)
    return Maintenance.objects.filter(Q(zone__in=zones) | Q(host__zone__in=zones)).select_related(
        "zone", "host__zone", "created_by"
    )


def _calendar(request: HttpRequest, hosts: list[Host]) -> list[dict]:
    """Each of the next seven days with its windows, freezes and host-changing schedule runs."""
    now = timezone.now()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    days = [{"day": start + timedelta(days=i), "items": []} for i in range(DAYS)]

    def place(when, what: str, kind: str, until=None) -> None:
        index = (when - start).days
        if 0 <= index < DAYS:
            days[index]["items"].append({"when": when, "until": until, "what": what, "kind": kind})

    for item in maintenance.upcoming(hosts, start, DAYS):
        m = item["item"]
        where = m.host.name if m.host_id else f"zone {m.zone.name}"
        label = f"{m.get_kind_display()} for {where}: {m.reason}"
        place(max(item["start"], start), label, m.kind, item["end"])
    visible = {h.pk for h in hosts}
    for schedule in Schedule.objects.filter(enabled=True):
        recipe = recipes.get(schedule.recipe)
        targets = schedules.targets(schedule)
        if recipe is None or not recipe.changes_host or not targets:
            continue
        if not all(h.pk in visible for h in targets):
            continue
        for when in schedules.next_times(schedule.cron, schedule.timezone, now, 50):
            if when >= start + timedelta(days=DAYS):
                break
            place(when, f"{schedule.name}: {recipe.title} on "
                  f"{', '.join(h.name for h in targets)}", "schedule")  # fmt: skip
    for day in days:
        day["items"].sort(key=lambda i: i["when"])
    return days


@requires(Action.VIEW)
def maintenance_page(request: HttpRequest) -> HttpResponse:
    hosts = list(scope(Host.objects.select_related("zone"), request.user))
    items = list(_visible(request))
    context = {
        "windows": [m for m in items if m.kind == Maintenance.Kind.WINDOW],
        "freezes": [
            m for m in items if m.kind == Maintenance.Kind.FREEZE and m.ends_at > timezone.now()
        ],  # fmt: skip
        "days": _calendar(request, hosts),
        "may_manage": zones_where(request.user, Action.MANAGE_SCHEDULES).exists(),
        "may_delete": {m.pk for m in items if can(request.user, Action.MANAGE_SCHEDULES, m)},
    }
    return render(request, "jobs/maintenance.html", context)


@requires(Action.VIEW)
def maintenance_new(request: HttpRequest) -> HttpResponse:
    if not zones_where(request.user, Action.MANAGE_SCHEDULES).exists():
        require(request, Action.MANAGE_SCHEDULES, scope(Host.objects.all(), request.user).first())
    form = MaintenanceForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        item = Maintenance(
            kind=data["kind"], zone=data.get("zone"), host=data.get("host"),
            reason=data["reason"], timezone=data["timezone"], created_by=request.user,
        )  # fmt: skip
        if item.kind == Maintenance.Kind.WINDOW:
            item.cron, item.duration_minutes = data["cron"], data["duration_minutes"]
        else:
            item.starts_at, item.ends_at = data["starts_at"], data["ends_at"]
        require(request, Action.MANAGE_SCHEDULES, item)
        with transaction.atomic():
            item.save()
            record("maintenance.created", request=request, target=item,
                   zone=item.where.name, details={"after": snapshot(item)})  # fmt: skip
        messages.success(request, f"{item.get_kind_display()} saved.")
        return redirect("jobs:maintenance")
    status = 400 if form.errors else 200
    return render(request, "jobs/maintenance_form.html", {"form": form}, status=status)


@require_POST
@requires(Action.VIEW)
def maintenance_delete(request: HttpRequest, pk: int) -> HttpResponse:
    item = _visible(request).filter(pk=pk).first()
    if item is None:
        raise Http404("No such window or freeze.")
    require(request, Action.MANAGE_SCHEDULES, item)
    with transaction.atomic():
        record("maintenance.deleted", request=request, target=item, zone=item.where.name,
               details={"before": snapshot(item)})  # fmt: skip
        item.delete()
    messages.success(request, f"{item.get_kind_display()} removed.")
    return redirect("jobs:maintenance")
