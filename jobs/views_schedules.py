"""Schedules as people see them: the list (next run, last result, owner), one schedule with
its occurrences and runs, creating and changing one (the recipe's own form for its
parameters, the next five runs in its time zone as the cron is typed), enabling and disabling;
and the alerts they (and checks, and host keys) raise, with acknowledging one."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from hosts.models import Host
from remora_admin.access.guards import require, requires
from remora_admin.access.policy import Action, can, holds_globally, scope

from . import alerts, maintenance, recipes, schedules
from .cron import zones
from .forms import ScheduleForm
from .models import Alert, Schedule


def visible_hosts(request: HttpRequest) -> set[int]:
    return set(scope(Host.objects.all(), request.user).values_list("pk", flat=True))


def visible(request: HttpRequest, schedule: Schedule, seen: set[int] | None = None) -> bool:
    """Seen by whoever sees every host it runs on (one with no host now: global roles only)."""
    seen = visible_hosts(request) if seen is None else seen
    targets = schedules.targets(schedule) or list(schedule.hosts.all())
    if not targets:
        return holds_globally(request.user, Action.VIEW)
    return all(h.pk in seen for h in targets)


def schedule_for(request: HttpRequest, pk: int) -> Schedule:
    schedule = Schedule.objects.select_related("owner").filter(pk=pk).first()
    if schedule is None or not visible(request, schedule):
        raise Http404("No such schedule.")
    return schedule


def _may_manage(request: HttpRequest, schedule: Schedule) -> bool:
    targets = schedules.targets(schedule) or list(schedule.hosts.all())
    return bool(targets) and all(can(request.user, Action.MANAGE_SCHEDULES, h) for h in targets)


@requires(Action.VIEW)
def schedule_list(request: HttpRequest) -> HttpResponse:
    seen = visible_hosts(request)
    rows = []
    for schedule in Schedule.objects.select_related("owner").prefetch_related("hosts"):
        if not visible(request, schedule, seen):
            continue
        last = schedule.occurrences.first()
        upcoming = schedules.describe(schedule, count=1) if schedule.enabled else []
        rows.append({"schedule": schedule, "last": last, "next": upcoming[0] if upcoming else ""})
    may_create = Host.objects.filter(pk__in=seen).exists() and any(
        can(request.user, Action.MANAGE_SCHEDULES, h)
        for h in Host.objects.filter(pk__in=seen).select_related("zone")
    )
    return render(request, "jobs/schedule_list.html", {"rows": rows, "may_create": may_create})


@requires(Action.VIEW)
def schedule_detail(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = schedule_for(request, pk)
    context = {
        "schedule": schedule,
        "recipe": recipes.get(schedule.recipe),
        "targets": schedules.targets(schedule),
        "upcoming": schedules.describe(schedule) if schedule.enabled else [],
        "occurrences": schedule.occurrences.all()[:50],
        "may_manage": _may_manage(request, schedule),
    }
    return render(request, "jobs/schedule_detail.html", context)


def _recipe_choices(request: HttpRequest) -> list:
    """Recipes a schedule may run: no secret parameters (nobody is there to type them)."""
    return sorted(
        (r for r in recipes.REGISTRY.values() if not r.secret_fields and r.name != "adhoc"),
        key=lambda r: (r.category, r.title),
    )


def _edit(request: HttpRequest, schedule: Schedule | None) -> HttpResponse:
    name = (
        request.POST.get("recipe")
        or request.GET.get("recipe")
        or (schedule.recipe if schedule else "")
    )
    recipe = recipes.get(name) if name else None
    if recipe is None or recipe not in _recipe_choices(request):
        if name:
            messages.error(request, f"“{name}” is not a recipe a schedule can run.")
        return render(
            request,
            "jobs/schedule_form.html",
            {"schedule": schedule, "choices": _recipe_choices(request)},
        )
    initial = {}
    if schedule is not None:
        initial = {f: getattr(schedule, f) for f in ("name", "service_kind", "cron", "timezone",
                   "missed", "skip_while_running", "grace_minutes", "enabled")}  # fmt: skip
        initial["hosts"] = list(schedule.hosts.all())
    form = ScheduleForm(request.POST or None, user=request.user, instance=schedule,
                        initial=initial)  # fmt: skip
    host = None
    if form.is_bound and form.is_valid():
        targets = form.targets()
        host = targets[0] if targets else None
    params_form = recipe.form(
        request.POST or None,
        host=host,
        prefix="p",
        initial=schedule.params if schedule and schedule.recipe == recipe.name else None,
    )
    if request.method == "POST" and form.is_valid() and params_form.is_valid():
        targets = form.targets()
        refused = [h.name for h in targets if not can(request.user, recipe.needs, h)]
        blocked = [h.name for h in targets if not recipe.applies_to(h)]
        unwindowed = maintenance.missing_windows(targets) if recipe.changes_host else []
        if unwindowed:
            form.add_error(
                None,
                f"{recipe.title} changes hosts, and the zone of {', '.join(unwindowed)} requires "
                "a maintenance window for such schedules: add one first.",
            )
        elif refused:
            form.add_error(None, f"You may not run {recipe.title} on {', '.join(refused)}.")
        elif blocked:
            form.add_error(None, f"{recipe.title} does not apply to {', '.join(blocked)}.")
        else:
            saved = schedules.save(
                request.user,
                form.cleaned_data,
                targets,
                recipe.name,
                schedules.storable(params_form.cleaned_data),
                instance=schedule,
                request=request,
            )
            messages.success(request, f"Schedule {saved.name} saved.")
            return redirect(saved)
    context = {
        "schedule": schedule,
        "recipe": recipe,
        "form": form,
        "params_form": params_form,
        "zones": sorted(zones()),
    }
    return render(request, "jobs/schedule_form.html", context, status=400 if form.errors or
                  params_form.errors else 200)  # fmt: skip


@requires(Action.VIEW)
def schedule_new(request: HttpRequest) -> HttpResponse:
    hosts = scope(Host.objects.select_related("zone"), request.user)
    if not any(can(request.user, Action.MANAGE_SCHEDULES, h) for h in hosts):
        require(request, Action.MANAGE_SCHEDULES, hosts.first())  # a 403 with the reason
    return _edit(request, None)


@requires(Action.VIEW)
def schedule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = schedule_for(request, pk)
    for host in schedules.targets(schedule) or schedule.hosts.all():
        require(request, Action.MANAGE_SCHEDULES, host)
    return _edit(request, schedule)


@require_POST
@requires(Action.VIEW)
def schedule_toggle(request: HttpRequest, pk: int, enable: bool) -> HttpResponse:
    schedule = schedule_for(request, pk)
    for host in schedules.targets(schedule) or schedule.hosts.all():
        require(request, Action.MANAGE_SCHEDULES, host)
    schedules.set_enabled(request.user, schedule, enable, request=request)
    messages.success(request, f"Schedule {schedule.name} {'enabled' if enable else 'disabled'}.")
    return redirect(schedule)


@requires(Action.VIEW)
def schedule_preview(request: HttpRequest) -> HttpResponse:
    """The next five runs of a cron expression in a time zone (the form asks as one types)."""
    context: dict = {"cron": request.GET.get("cron", ""), "tz": request.GET.get("timezone", "")}
    if not context["cron"].strip():  # nothing typed yet: nothing to say
        return render(request, "jobs/schedule_form.html#preview", context)
    try:
        cron = schedules.check_cron(context["cron"])
        schedules.zone_info(context["tz"] or "UTC")
    except ValidationError as error:  # said in words, in place of the times
        context["error"] = " ".join(error.messages)
    else:
        context["times"] = [
            t.strftime("%a %Y-%m-%d %H:%M %Z")
            for t in schedules.next_times(cron, context["tz"] or "UTC", timezone.now())
        ]
    return render(request, "jobs/schedule_form.html#preview", context)


@requires(Action.VIEW)
def alert_list(request: HttpRequest) -> HttpResponse:
    shown = alerts.visible(request.user)
    open_ = list(shown.filter(cleared_at__isnull=True)[:200])
    context = {
        "open": [(a, _may_acknowledge(request, a)) for a in open_],
        "cleared": shown.filter(cleared_at__isnull=False)[:50],
    }
    return render(request, "jobs/alert_list.html", context)


def _may_acknowledge(request: HttpRequest, alert: Alert) -> bool:
    zone = alert.zone
    if zone is None:
        return holds_globally(request.user, Action.OPERATE)
    return can(request.user, Action.OPERATE, alert)


@require_POST
@requires(Action.VIEW)
def alert_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    alert = alerts.visible(request.user).filter(pk=pk).first()
    if alert is None:
        raise Http404("No such alert.")
    if alert.zone is not None:
        require(request, Action.OPERATE, alert)
    try:
        alerts.acknowledge(request.user, alert, request=request)
    except alerts.NotAllowedToAcknowledge as refused:
        raise PermissionDenied(str(refused)) from None
    messages.success(request, f"Acknowledged: {alert.title}.")
    return redirect("jobs:alerts")
