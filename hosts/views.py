from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from remora_admin.access.guards import get_for_user, requires
from remora_admin.access.policy import Action, can, scope, zones_where

from .dependencies import reliability
from .diagram import topology
from .models import Host, Service
from .plan import phases_with_steps


@login_required
def host_list(request: HttpRequest) -> HttpResponse:
    hosts = scope(Host.objects.select_related("zone"), request.user)
    hosts = hosts.annotate(service_count=Count("services")).order_by("name")
    zone = request.GET.get("zone", "")
    if zone:
        hosts = hosts.filter(zone__name=zone)
    context = {"hosts": hosts, "zones": zones_where(request.user), "zone": zone}
    template = "hosts/host_list.html#rows" if request.htmx else "hosts/host_list.html"
    return render(request, template, context)


@login_required
def host_detail(request: HttpRequest, name: str) -> HttpResponse:
    host = get_for_user(request, Host.objects.select_related("zone"), name=name)
    services = Service.objects.filter(host=host)
    placements = host.placements.select_related("phase").order_by("phase__number", "kind")
    context = {
        "host": host,
        "services": services,
        "placements": placements,
        "runs": host.runs.select_related("requested_by").order_by("-id")[:10],
        "may_launch": can(request.user, Action.OPERATE, host)
        or can(request.user, Action.PROVISION, host),
        "may_edit": can(request.user, Action.EDIT_INVENTORY, host),
        "may_trust": can(request.user, Action.TRUST_HOST_KEY, host),
    }
    return render(request, "hosts/host_detail.html", context)


@requires(Action.VIEW)
def phase_list(request: HttpRequest) -> HttpResponse:
    """The growth plan, showing only the hosts the user may see."""
    visible = set(scope(Host.objects.all(), request.user).values_list("name", flat=True))
    steps = phases_with_steps(visible)
    for i, step in enumerate(steps):
        step.reliability = reliability(step.phase, visible)
        step.diagram = topology(
            step.phase,
            added={(p.host.name, p.kind) for p in step.added} if i else set(),
            changed={(p.host.name, p.kind) for p in step.reconfigured},
            hosts=visible,
        )
    return render(request, "hosts/phase_list.html", {"steps": steps})
