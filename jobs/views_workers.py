"""The workers page: every job worker on every machine, what it is running, and the backlog.
For those who may read every run (auditors, superadmins): it names runs in every zone."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from remora_admin.access.guards import requires
from remora_admin.access.policy import Action

from . import workers


@require_safe
@requires(Action.READ_ALL_RUNS)
def worker_list(request: HttpRequest) -> HttpResponse:
    context = {
        "snapshot": workers.snapshot(),
        "heartbeat_timeout": settings.REMORA_RUN_HEARTBEAT_TIMEOUT,
    }
    if request.htmx:  # the board refreshing itself
        return render(request, "jobs/workers.html#board", context)
    return render(request, "jobs/workers.html", context)
