"""The audit log's page. In the wiring layer: remora_admin/audit imports nothing of ours, and
the page needs access's policy to decide who may read the log."""

import re

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from jobs import audit_checks
from jobs.queue import QueueUnavailable
from remora_admin.access.guards import requires
from remora_admin.access.policy import Action
from remora_admin.audit.models import AuditEvent, ChainVerification

PAGE_SIZE = 50
# AuditEvent.sequence is a PositiveBigIntegerField: at most 2**63 - 1 on every backend we run
# on (MariaDB's is unsigned, wider). A bigger `before` means "before everything": no filter.
MAX_SEQUENCE = 2**63 - 1
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")


def parse_sequence(raw: str) -> int | None:
    """A sequence number from a query parameter: ASCII digits only ('²' and '٣' are digits to
    str.isdigit, not to int()), within the column's range; None for anything else."""
    if not _ASCII_DIGITS.fullmatch(raw):
        return None
    value = int(raw)
    return value if value <= MAX_SEQUENCE else None


@requires(Action.READ_AUDIT)
def event_list(request: HttpRequest) -> HttpResponse:
    """The newest events first, paged by sequence (fast at any depth, unlike OFFSET)."""
    events = AuditEvent.objects.all()
    before = parse_sequence(request.GET.get("before", ""))
    if before is not None:
        events = events.filter(sequence__lt=before)
    page = list(events[: PAGE_SIZE + 1])
    has_more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    context = {
        "events": page,
        "next_before": page[-1].sequence if has_more else None,
        "verification": ChainVerification.objects.select_related("requested_by").first(),
    }
    template = "audit/event_list.html#page" if request.htmx else "audit/event_list.html"
    return render(request, template, context)


@require_POST
@requires(Action.READ_AUDIT)
def verify(request: HttpRequest) -> HttpResponse:
    """Ask a worker to verify the chain (and compare it with the copy off the box)."""
    try:
        audit_checks.ask(request.user, request=request)
    except QueueUnavailable as exc:
        return render(request, "503.html", {"message": str(exc)}, status=503)
    return redirect("audit:list")


@requires(Action.READ_AUDIT)
def verification(request: HttpRequest, pk: int) -> HttpResponse:
    """One verification's state, polled by the audit page until it has finished."""
    found = get_object_or_404(ChainVerification.objects.select_related("requested_by"), pk=pk)
    if not request.htmx:  # a person following the link: the audit page says it all
        return redirect("audit:list")
    response = render(request, "audit/event_list.html#verification", {"verification": found})
    if found.finished_at is not None:
        response.status_code = HttpResponseStopPolling.status_code
    return response


# Included as ("remora_admin.audit_views", "audit") by remora_admin/urls.py: audit:list.
urlpatterns = [
    path("", event_list, name="list"),
    path("verify/", verify, name="verify"),
    path("verify/<int:pk>/", verification, name="verification"),
]
