"""The audit log's page. In the wiring layer: remora_admin/audit imports nothing of ours, and
the page needs access's policy to decide who may read the log."""

import itertools
import json
import re
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo

from django import forms
from django.db import connection
from django.db.models import BigIntegerField, Q
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import include, path
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import HttpResponseStopPolling

from jobs import audit_checks
from jobs.models import JobRun, PlanStep
from jobs.queue import QueueUnavailable
from jobs.recipes.base import REGISTRY, Category
from remora_admin.access.guards import requires
from remora_admin.access.policy import Action, audit_zones, can
from remora_admin.audit.catalogue import all_actions, groups
from remora_admin.audit.export import csv_writer
from remora_admin.audit.log import record
from remora_admin.audit.models import AuditEvent, ChainVerification

PAGE_SIZE = 50
# What "refusals and denials" means, spelled out from the catalogue.
REFUSALS = sorted(
    {a for a in all_actions() if a.endswith("refused") or "refused_" in a}
    | {"access.denied", "auth.login_failed"}
)
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


class ReviewFilter(forms.Form):
    """The review page's filters, all in the URL (shareable; the back button works)."""

    person = forms.CharField(required=False, max_length=150)
    group = forms.ChoiceField(required=False)
    action = forms.ChoiceField(required=False)
    zone = forms.CharField(required=False, max_length=64)
    host = forms.CharField(required=False, max_length=63)
    kind = forms.ChoiceField(
        required=False, label="Run kind", choices=[("", "Any run kind"), *Category.choices]
    )
    outcome = forms.ChoiceField(
        required=False, choices=[("", "Any outcome"), ("refused", "Refusals and denials")]
    )
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(required=False, max_length=100, label="Search")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["group"].choices = [("", "Any kind"), *[(g, g) for g in sorted(groups())]]
        self.fields["action"].choices = [("", "Any action"), *[(a, a) for a in all_actions()]]

    def apply(self, events, zone: tzinfo = UTC):
        """The events matching every filter given (an invalid filter matches nothing); the
        days are the viewer's, in `zone`."""
        if not self.is_valid():
            return events.none()
        f = self.cleaned_data
        if f["person"]:
            events = events.filter(actor_name=f["person"])
        if f["group"]:
            events = events.filter(action__startswith=f"{f['group']}.")
        if f["action"]:
            events = events.filter(action=f["action"])
        if f["zone"]:
            events = events.filter(zone=f["zone"])
        if f["host"]:  # (an indexed column, filled at write: fast at any depth)
            events = events.filter(host=f["host"])
        if f["kind"]:
            names = [name for name, r in REGISTRY.items() if r.category == f["kind"]]
            runs = JobRun.objects.filter(recipe__in=names).values("pk")
            events = (
                events.filter(target_type="jobs.jobrun")
                .annotate(run_id=Cast("target_id", output_field=BigIntegerField()))
                .filter(run_id__in=runs)
            )
        if f["outcome"] == "refused":
            events = events.filter(action__in=REFUSALS)  # (the action index serves a list)
        if f["since"]:
            events = events.filter(occurred_at__gte=_day_start(f["since"], zone))
        if f["until"]:
            after = f["until"] + timedelta(days=1)
            events = events.filter(occurred_at__lt=_day_start(after, zone))
        if f["q"]:
            events = _search(events, f["q"])
        return events


_WORD = re.compile(r"\w{3,}")


def _search(events, text: str):
    """Events whose target or details contain `text`. On MariaDB the full-text index first
    finds the events holding one of its words (or a word that begins with it), then the text
    itself is looked for in those only: fast at a million events, where reading every row is
    not."""
    events = events.filter(Q(target_repr__icontains=text) | Q(details__icontains=text))
    words = _WORD.findall(text)
    if connection.vendor != "mysql" or not words:
        return events
    # One word only, the likeliest to be rare (one with digits, then the longest): the index
    # is fast for a rare word and slow for a common one, and the text check does the rest.
    word = max(words, key=lambda w: (any(c.isdigit() for c in w), len(w)))
    terms = f"+{word}*"
    return events.extra(  # noqa: S610 - a fixed clause; the words are a parameter
        where=["MATCH (search) AGAINST (%s IN BOOLEAN MODE)"], params=[terms]
    )


def _day_start(day, zone: tzinfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def viewer_zone(request: HttpRequest) -> tzinfo:
    """The viewer's time zone, as their browser told it (the `tz` cookie set by
    static/remora-tz.js); UTC when unknown or not a zone."""
    name = request.COOKIES.get("tz", "")
    if name and len(name) <= 64:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return UTC


def readable(request: HttpRequest):
    """The events this viewer may read: all of them (auditors, superadmins), or those of the
    zones they administer."""
    zones = audit_zones(request.user)
    events = AuditEvent.objects.all()
    return events if zones is None else events.filter(zone__in=zones)


def in_viewer_zone(request: HttpRequest, template: str, context: dict, **kwargs) -> HttpResponse:
    """Render with times in the viewer's zone (UTC stays in each time's title)."""
    zone = viewer_zone(request)
    context["viewer_tz"] = str(zone)
    with timezone.override(zone):
        return render(request, template, context, **kwargs)


@require_safe
@requires(Action.READ_ZONE_AUDIT)
def event_list(request: HttpRequest) -> HttpResponse:
    """The newest events first, filtered, paged by sequence (fast at any depth, unlike
    OFFSET); the filters live in the URL and the rows update in place (htmx)."""
    review = ReviewFilter(request.GET or None)
    events = readable(request)
    events = review.apply(events, viewer_zone(request)) if review.is_bound else events
    before = parse_sequence(request.GET.get("before", ""))
    if before is not None:
        events = events.filter(sequence__lt=before)
    page = list(events[: PAGE_SIZE + 1])
    has_more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    kept = request.GET.copy()
    kept.pop("before", None)
    context = {
        "events": page,
        "next_before": page[-1].sequence if has_more else None,
        "review": review if review.is_bound else ReviewFilter(),
        "filters": kept.urlencode(),
        "filtered": bool(kept),
        "everything": can(request.user, Action.READ_AUDIT),
        "own_zones": audit_zones(request.user) or [],
    }
    if context["everything"]:
        context["verification"] = ChainVerification.objects.select_related("requested_by").first()
    template = "audit/event_list.html"
    if request.htmx:  # more rows, or the filtered results with their export links
        template += "#rows" if before is not None else "#results"
    response = in_viewer_zone(request, template, context)
    # One address, two answers (the page, or its part for htmx): caches must keep both apart,
    # or the back button shows a bare part.
    patch_vary_headers(response, ("HX-Request",))
    return response


# Every hashed field and the hash: an export can be checked event by event on its own.
EXPORT_COLUMNS = ("sequence", "occurred_at", "actor_id", "actor_name", "action", "target_type",
                  "target_id", "target_repr", "zone", "ip", "user_agent", "details",
                  "previous_hash", "hash")  # fmt: skip
EXPORT_CHUNK = 2000


class _Line:
    """A file-like object that hands back what the CSV writer wrote (for streaming)."""

    def write(self, text: str) -> str:
        return text


def _streamed(events, since: int | None) -> Iterator[AuditEvent]:
    """Every event of `events` newest first, read in keyset chunks (memory stays flat)."""
    before = since
    while True:
        chunk = events if before is None else events.filter(sequence__lt=before)
        rows = list(chunk.order_by("-sequence")[:EXPORT_CHUNK])
        yield from rows
        if len(rows) < EXPORT_CHUNK:
            return
        before = rows[-1].sequence


def _cells(event: AuditEvent) -> list:
    values = {name: getattr(event, name) for name in EXPORT_COLUMNS}
    values["occurred_at"] = event.occurred_at.isoformat(timespec="microseconds")
    values["details"] = json.dumps(event.details, sort_keys=True, ensure_ascii=False)
    return [values[name] for name in EXPORT_COLUMNS]


def _json_line(event: AuditEvent) -> str:
    values = dict(zip(EXPORT_COLUMNS, _cells(event), strict=True))
    values["details"] = event.details  # an object, not its text
    return json.dumps(values, ensure_ascii=False, default=str) + "\n"


@require_safe
@requires(Action.READ_ZONE_AUDIT)
def export(request: HttpRequest, fmt: str) -> HttpResponse:
    return export_events(request, fmt)


def export_events(request: HttpRequest, fmt: str) -> HttpResponse:
    """The current filter's events, streamed (CSV with formula cells neutralised, or JSON
    Lines); the export itself is an audit event recording the filter. The caller asked the
    policy (the page above, the API)."""
    review = ReviewFilter(request.GET or None)
    if review.is_bound and not review.is_valid():
        return HttpResponseBadRequest("A filter is not valid: " + review.errors.as_text())
    events = readable(request)
    events = review.apply(events, viewer_zone(request)) if review.is_bound else events
    # The export covers the log up to now: events written while it streams are left out.
    head = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first()
    filters = {k: v for k, v in request.GET.items() if v}
    record("audit.exported", request=request, target_type="audit log", target_repr=fmt,
           details={"format": fmt, "filters": filters, "up_to": head})  # fmt: skip
    rows = _streamed(events, (head or 0) + 1)
    if fmt == "csv":
        writer = csv_writer(_Line())
        body = itertools.chain(
            [writer.writerow(EXPORT_COLUMNS)], (writer.writerow(_cells(e)) for e in rows)
        )
        content_type, suffix = "text/csv; charset=utf-8", "csv"
    else:
        body = (_json_line(e) for e in rows)
        content_type, suffix = "application/x-ndjson; charset=utf-8", "jsonl"
    response = StreamingHttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="remora-audit.{suffix}"'
    response["Cache-Control"] = "no-store"
    return response


@require_safe
@requires(Action.READ_ZONE_AUDIT)
def event_detail(request: HttpRequest, sequence: int) -> HttpResponse:
    """One event: its fields, a change's before and after side by side, and for a run its
    whole story (every event about it, in order, with the exact script and the decisions)."""
    event = get_object_or_404(readable(request), sequence=sequence)
    details = dict(event.details)
    before, after = details.pop("before", None), details.pop("after", None)
    changes = []
    if isinstance(before, dict) or isinstance(after, dict):
        before, after = before or {}, after or {}
        changes = [(k, before.get(k, ""), after.get(k, "")) for k in sorted({*before, *after})]
    story = []
    if event.target_type and event.target_id:
        story = list(
            readable(request)
            .filter(target_type=event.target_type, target_id=event.target_id)
            .order_by("sequence")[:200]
        )
    steps = []
    if event.target_type == "jobs.planbatch" and event.target_id.isdigit():
        steps = _plan_steps(request, int(event.target_id))
    context = {"event": event, "details": details, "changes": changes, "story": story,
               "steps": steps,
               "script": next((e.details.get("script") for e in story
                               if e.action == "run.requested"), None)}  # fmt: skip
    return in_viewer_zone(request, "audit/event_detail.html", context)


def _plan_steps(request: HttpRequest, batch_id: int) -> list[tuple[PlanStep, int | None]]:
    """A plan batch's steps in order, each with the event that requested its run."""
    steps = list(
        PlanStep.objects.filter(batch_id=batch_id).select_related("host").order_by("position")
    )
    runs = [str(s.run_id) for s in steps if s.run_id]
    requested = dict(
        readable(request)
        .filter(target_type="jobs.jobrun", target_id__in=runs, action="run.requested")
        .values_list("target_id", "sequence")
    )
    return [(s, requested.get(str(s.run_id))) for s in steps]


@require_POST
@requires(Action.READ_AUDIT)
def verify(request: HttpRequest) -> HttpResponse:
    """Ask a worker to verify the chain (and compare it with the copy off the box)."""
    try:
        audit_checks.ask(request.user, request=request)
    except QueueUnavailable as exc:
        return render(request, "503.html", {"message": str(exc)}, status=503)
    return redirect("audit:list")


@require_safe
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
    path("<int:sequence>/", event_detail, name="event"),
    path("export.csv", export, {"fmt": "csv"}, name="export_csv"),
    path("export.jsonl", export, {"fmt": "jsonl"}, name="export_jsonl"),
    path("verify/", verify, name="verify"),
    path("verify/<int:pk>/", verification, name="verification"),
    path("", include("remora_admin.audit_retention_views")),
]
