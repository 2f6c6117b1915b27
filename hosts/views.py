from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from remora_admin.access.models import Zone

from .diagram import topology
from .models import Host, Service
from .plan import phases_with_steps


@login_required
def host_list(request: HttpRequest) -> HttpResponse:
    hosts = Host.objects.select_related("zone").annotate(service_count=Count("services"))
    zone = request.GET.get("zone", "")
    if zone:
        hosts = hosts.filter(zone__name=zone)
    context = {"hosts": hosts, "zones": Zone.objects.all(), "zone": zone}
    template = "hosts/host_list.html#rows" if request.htmx else "hosts/host_list.html"
    return render(request, template, context)


@login_required
def host_detail(request: HttpRequest, name: str) -> HttpResponse:
    host = get_object_or_404(Host.objects.select_related("zone"), name=name)
    services = Service.objects.filter(host=host)
    placements = host.placements.select_related("phase").order_by("phase__number", "kind")
    context = {"host": host, "services": services, "placements": placements}
    return render(request, "hosts/host_detail.html", context)


@login_required
def phase_list(request: HttpRequest) -> HttpResponse:
    steps = phases_with_steps()
    for step in steps:
        changed = {(p.host.name, p.kind) for p in step.added + step.reconfigured}
        step.diagram = topology(step.phase, added=changed if step.phase.number > 1 else set())
    return render(request, "hosts/phase_list.html", {"steps": steps})
