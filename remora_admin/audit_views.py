"""The audit log's page. In the wiring layer: remora_admin/audit imports nothing of ours, and
the page needs access's policy to decide who may read the log."""

import re

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from remora_admin.access.guards import requires
from remora_admin.access.policy import Action
from remora_admin.audit.models import AuditEvent

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
    }
    template = "audit/event_list.html#page" if request.htmx else "audit/event_list.html"
    return render(request, template, context)


# Included as ("remora_admin.audit_views", "audit") by remora_admin/urls.py: audit:list.
urlpatterns = [
    path("", event_list, name="list"),
]
