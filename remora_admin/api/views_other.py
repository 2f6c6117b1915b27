"""Schedules (view, enable, disable), alerts (view, acknowledge), the workers, the audit log
(filter, one event, export), your tokens and who you are. The pages' own rules, asked the
same way."""

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import alerts, schedules, workers
from jobs.models import Schedule
from jobs.views_schedules import schedule_for, visible, visible_hosts
from remora_admin import audit_views
from remora_admin.access import tokens
from remora_admin.access.guards import require
from remora_admin.access.models import ApiToken
from remora_admin.access.policy import Action, held_roles, is_verified
from remora_admin.audit_views import ReviewFilter, parse_sequence, readable

from . import serializers as s
from .auth import token_of
from .views_inventory import Visible

AUDIT_PAGE = 100


class ScheduleList(Visible, APIView):
    """The schedules you may see (those whose every host you see)."""

    @extend_schema(responses=s.ScheduleSerializer(many=True))
    def get(self, request: Request) -> Response:
        seen = visible_hosts(request)
        rows = [
            schedule
            for schedule in Schedule.objects.select_related("owner").prefetch_related("hosts")
            if visible(request, schedule, seen)
        ]
        return Response(s.ScheduleSerializer(rows, many=True).data)


class ScheduleDetail(Visible, APIView):
    @extend_schema(responses=s.ScheduleSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.ScheduleSerializer(schedule_for(request, pk)).data)


class ScheduleToggle(Visible, APIView):
    """Turn a schedule on (it looks forward from now) or off; needs the right to manage the
    schedules of every host it runs on."""

    enable = True

    @extend_schema(request=None, responses=s.ScheduleSerializer)
    def post(self, request: Request, pk: int) -> Response:
        schedule = schedule_for(request, pk)
        for host in schedules.targets(schedule) or schedule.hosts.all():
            require(request, Action.MANAGE_SCHEDULES, host)
        schedules.set_enabled(request.user, schedule, self.enable, request=request)
        schedule.refresh_from_db()
        return Response(s.ScheduleSerializer(schedule).data)


class ScheduleEnable(ScheduleToggle):
    enable = True


class ScheduleDisable(ScheduleToggle):
    enable = False


class AlertList(Visible, APIView):
    """Alerts you may see: open ones first (newest first), then recently cleared ones."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "open", bool, description="Only open (true) or only cleared (false) alerts."
            )
        ],  # fmt: skip
        responses=s.AlertSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        shown = alerts.visible(request.user)
        wanted = request.query_params.get("open", "").lower()
        if wanted in ("true", "1"):
            shown = shown.filter(cleared_at__isnull=True)
        elif wanted in ("false", "0"):
            shown = shown.filter(cleared_at__isnull=False)
        rows = shown.order_by("cleared_at", "-raised_at")[:250]
        return Response(s.AlertSerializer(rows, many=True).data)


class AlertAcknowledge(Visible, APIView):
    """Say you have seen an alert and are on it (audited)."""

    @extend_schema(request=None, responses=s.AlertSerializer)
    def post(self, request: Request, pk: int) -> Response:
        alert = alerts.visible(request.user).filter(pk=pk).first()
        if alert is None:
            raise Http404("No such alert.")
        if alert.zone is not None:
            require(request, Action.OPERATE, alert)
        try:
            alerts.acknowledge(request.user, alert, request=request)
        except alerts.NotAllowedToAcknowledge as refused:
            return Response({"detail": str(refused), "code": "refused"}, status=409)
        alert.refresh_from_db()
        return Response(s.AlertSerializer(alert).data)


AUDIT_FILTERS = [
    OpenApiParameter("person", str, description="Who acted (user name)."),
    OpenApiParameter("group", str, description="A kind of event: the part before the dot."),
    OpenApiParameter("action", str, description="One action, e.g. run.requested."),
    OpenApiParameter("zone", str),
    OpenApiParameter("host", str),
    OpenApiParameter("kind", str, description="Events of runs of this recipe category."),
    OpenApiParameter("outcome", str, enum=["refused"], description="Refusals and denials."),
    OpenApiParameter("since", OpenApiTypes.DATE, description="From this day (UTC)."),
    OpenApiParameter("until", OpenApiTypes.DATE, description="Up to this day (UTC)."),
    OpenApiParameter("q", str, description="Text in the target or details."),
]


class WorkerList(APIView):
    """Every job worker on every machine, the run each is on, and the backlog (the console's
    Workers page). For those who read every run."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        require(request, Action.READ_ALL_RUNS)

    @extend_schema(responses=s.WorkersSerializer)
    def get(self, request: Request) -> Response:
        return Response(s.WorkersSerializer(workers.snapshot()).data)


class AuditReading(APIView):
    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        require(request, Action.READ_ZONE_AUDIT)


def _filtered(request):
    review = ReviewFilter(request.query_params or None)
    events = readable(request)
    if review.is_bound:
        if not review.is_valid():
            errors = {k: [str(m) for m in v] for k, v in review.errors.items()}
            return None, Response({"detail": "A filter is not valid.", "code": "invalid",
                                   "errors": errors}, status=400)  # fmt: skip
        events = review.apply(events)
    return events, None


class EventList(AuditReading):
    """Audit events you may read (every one, or those of the zones you administer), newest
    first, with the review page's filters; page back with `before`."""

    @extend_schema(
        parameters=[
            *AUDIT_FILTERS,
            OpenApiParameter(
                "before",
                int,
                description="Only events older than this sequence number (the next page).",
            ),
        ],  # fmt: skip
        responses=s.EventPageSerializer,
    )
    def get(self, request: Request) -> Response:
        query = request.query_params.copy()
        raw_before = query.pop("before", [""])[0]
        before = parse_sequence(raw_before)
        if raw_before and before is None:
            return Response({"detail": "before must be a sequence number.", "code": "invalid"},
                            status=400)  # fmt: skip
        events, problem = _filtered(request)
        if problem is not None:
            return problem
        if before is not None:
            events = events.filter(sequence__lt=before)
        page = list(events.order_by("-sequence")[: AUDIT_PAGE + 1])
        more = len(page) > AUDIT_PAGE
        page = page[:AUDIT_PAGE]
        body = {"results": s.EventSerializer(page, many=True).data,
                "next_before": page[-1].sequence if more else None}  # fmt: skip
        return Response(body)


class EventDetail(AuditReading):
    @extend_schema(operation_id="audit_event_retrieve", responses=s.EventSerializer)
    def get(self, request: Request, sequence: int) -> Response:
        event = readable(request).filter(sequence=sequence).first()
        if event is None:
            raise Http404("No such event (or not one you may read).")
        return Response(s.EventSerializer(event).data)


class FileFormatIsNotRenderer(DefaultContentNegotiation):
    """`format` here names the export's file format, not one of DRF's renderers (its URL
    override would answer 404 to format=jsonl): refusals are JSON, the file is the export's."""

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = renderers[0]
        return renderer, renderer.media_type


class EventExport(AuditReading):
    """The filtered events as a file (CSV, or JSON Lines), streamed; the export is audited."""

    def perform_content_negotiation(self, request, force=False):
        # `format` here names the file's format, not one of DRF's renderers (whose own
        # `?format=` would answer 404 for csv and jsonl): errors stay JSON.
        return super().perform_content_negotiation(request, force=True)

    content_negotiation_class = FileFormatIsNotRenderer

    @extend_schema(
        parameters=[
            *AUDIT_FILTERS,
            OpenApiParameter(
                "format", str, enum=["csv", "jsonl"], description="csv (default) or jsonl."
            ),
        ],  # fmt: skip
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/x-ndjson"): OpenApiTypes.STR,
        },  # fmt: skip
    )
    def get(self, request: Request):
        fmt = request.query_params.get("format", "csv")
        if fmt not in ("csv", "jsonl"):
            return Response({"detail": "format is csv or jsonl.", "code": "invalid"}, status=400)
        _, problem = _filtered(request)  # a bad filter: the JSON refusal, not the page's text
        if problem is not None:
            return problem
        # The page's own export (the same filter, streaming and audit event), on the request
        # Django sees: the filter must not read `format` as a filter.
        django_request = request._request
        query = django_request.GET.copy()
        query.pop("format", None)
        django_request.GET = query
        return audit_views.export_events(django_request, fmt)


class TokenList(APIView):
    """Your API tokens (never their secrets: they are shown once, in the console)."""

    @extend_schema(responses=s.TokenSerializer(many=True))
    def get(self, request: Request) -> Response:
        mine = ApiToken.objects.filter(user=request.user)
        return Response(s.TokenSerializer(mine, many=True).data)


class TokenRevoke(APIView):
    """Revoke one of your tokens (a superadmin may revoke anyone's)."""

    @extend_schema(request=None, responses=s.TokenSerializer)
    def post(self, request: Request, pk: int) -> Response:
        token = tokens.revocable(request, pk)
        try:
            tokens.revoke(request.user, token, request=request)
        except tokens.TokenRefused as refused:
            return Response({"detail": str(refused), "code": "refused"}, status=409)
        return Response(s.TokenSerializer(token).data)


class Me(APIView):
    """Who the API takes you for: your roles, and the token you called with."""

    @extend_schema(responses=s.MeSerializer)
    def get(self, request: Request) -> Response:
        token = token_of(request)
        roles = [f"{h.role} in {'all zones' if h.zone_id is None else h.grant.zone.name}"
                 for h in held_roles(request.user)]  # fmt: skip
        body = {
            "username": request.user.get_username(),
            "roles": roles,
            "second_factor": is_verified(request.user),
            "token": s.TokenSerializer(token).data if token else None,
        }
        return Response(body)
