from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from remora_admin.access.guards import requires
from remora_admin.access.policy import Action

from .models import AuditEvent

PAGE_SIZE = 50


@requires(Action.READ_AUDIT)
def event_list(request: HttpRequest) -> HttpResponse:
    """The newest events first, paged by sequence (fast at any depth, unlike OFFSET)."""
    events = AuditEvent.objects.all()
    before = request.GET.get("before", "")
    if before.isdigit():
        events = events.filter(sequence__lt=int(before))
    page = list(events[: PAGE_SIZE + 1])
    has_more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    context = {
        "events": page,
        "next_before": page[-1].sequence if has_more else None,
    }
    template = "audit/event_list.html#page" if request.htmx else "audit/event_list.html"
    return render(request, template, context)
