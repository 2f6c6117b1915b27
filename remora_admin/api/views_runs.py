"""Runs: launch (the same `launch(...)` as every other way in, parameters validated by the
recipe's own form), list with filters, one run, its output after an offset (long-polled), cancel,
approve and reject. Every change is `jobs.launch`'s, which asks the policy and audits."""

import codecs
import time

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hosts.models import Host
from jobs import launch as launching
from jobs import recipes
from jobs.forms import RunFilterForm
from jobs.models import JobRun, OutputChunk, RunState
from jobs.paging import IdsFirst
from remora_admin.access.guards import get_for_user, require
from remora_admin.access.policy import Action, Decision, scope

from . import serializers as s
from .views_inventory import Visible

LONGEST_WAIT = 20.0  # seconds an output request may wait for something new
POLL = 0.05


def _runs(request):
    runs = JobRun.objects.select_related("host__zone", "requested_by", "approved_by")
    return scope(runs, request.user, via="host__zone")


def _run(request, pk: int) -> JobRun:
    return get_for_user(request, _runs(request), pk=pk)


FILTERS = [
    OpenApiParameter("host", str),
    OpenApiParameter("recipe", str),
    OpenApiParameter("state", str, enum=RunState.values),
    OpenApiParameter("person", str, description="Who requested the runs (user name)."),
    OpenApiParameter("batch", str, description="The runs of one launch (a UUID)."),
    OpenApiParameter("since", str, description="Created at or after (ISO 8601)."),
]


class RunList(Visible, generics.ListAPIView):
    """Runs you may see, newest first; POST launches one recipe on one or more hosts."""

    serializer_class = s.RunSerializer

    def get_queryset(self):
        runs = _runs(self.request)
        form = RunFilterForm(self.request.query_params)
        if not form.is_valid():
            raise ValidationError({k: [str(m) for m in v] for k, v in form.errors.items()})
        f = form.cleaned_data
        for name, field in (("host", "host__name"), ("recipe", "recipe"), ("state", "state"),
                            ("person", "requested_by__username"), ("batch", "batch")):  # fmt: skip
            if f[name]:
                runs = runs.filter(**{field: f[name]})
        since = self.request.query_params.get("since")
        if since:
            moment = _moment(since)
            runs = runs.filter(created_at__gte=moment)
        return runs

    @extend_schema(parameters=FILTERS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def paginate_queryset(self, queryset):
        return super().paginate_queryset(IdsFirst(queryset))  # (jobs/paging.py: why)

    @extend_schema(request=s.LaunchSerializer, responses={201: s.LaunchedSerializer})
    def post(self, request: Request) -> Response:
        given = s.LaunchSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        recipe = recipes.get(data["recipe"])
        if recipe is None:
            raise ValidationError({"recipe": [f"There is no recipe named {data['recipe']}."]})
        hosts = []
        for name in dict.fromkeys(data["hosts"]):
            hosts.append(get_for_user(request, Host.objects.select_related("zone", "credential"),
                                      name=name))  # fmt: skip
        params = None
        for host in hosts:  # the recipe's own form, as offered for each host
            form = recipe.form(dict(data["params"]), host=host, fill_missing=True)
            if not form.is_valid():
                errors = {k: [str(m) for m in v] for k, v in form.errors.items()}
                raise ValidationError({"params": errors, "host": host.name})
            params = params if params is not None else form.cleaned_data
        unknown = set(data["params"]) - set(recipe.form(host=hosts[0]).fields)
        if unknown:
            raise ValidationError(
                {"params": {name: ["This recipe has no such parameter."] for name in unknown}}
            )
        together = data["all_or_nothing"]
        if together is None:
            together = recipe.changes_host
        outcome = launching.launch_many(
            request.user, recipe, hosts, params,
            all_or_nothing=together, dry_run=data["dry_run"], request=request,
        )  # fmt: skip
        if not outcome.runs:
            _nothing_ran(outcome.refusals)
        body = {
            "runs": s.RunSerializer(outcome.runs, many=True, context={"request": request}).data,
            "refusals": [
                {"host": getattr(r.target, "name", None), "code": r.code, "message": r.message}
                for r in outcome.refusals
            ],  # fmt: skip
        }
        return Response(body, status=201)


# The policy's reasons (Decision.reason): a launch refused only for these is a 403.
POLICY_REASONS = {"no_role", "needs_2fa", "restricted_zone", "inactive", "own_run"}


def _nothing_ran(refusals: list) -> None:
    """No host ran: the refusal as `launch` raises it (403 when only the policy said no)."""
    if refusals and all(r.code in POLICY_REASONS for r in refusals):
        first = refusals[0]
        raise launching.NotAllowed(Decision(False, first.code, first.message), refusals)
    raise launching.LaunchRefused(" ".join(r.message for r in refusals), refusals=refusals)


def _moment(raw: str):
    moment = parse_datetime(raw)
    if moment is None:
        raise ValidationError({"since": ["Give a date and time as ISO 8601, e.g. "
                                         "2026-12-01T00:00:00Z."]})  # fmt: skip
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.UTC)
    return moment


class RunDetail(Visible, APIView):
    """One run, with the exact script it ran."""

    @extend_schema(responses=s.RunDetailSerializer)
    def get(self, request: Request, pk: int) -> Response:
        run = _run(request, pk)
        return Response(s.RunDetailSerializer(run, context={"request": request}).data)


class OffsetQuery(serializers.Serializer):
    offset = serializers.IntegerField(min_value=0, default=0)
    wait = serializers.FloatField(min_value=0, max_value=LONGEST_WAIT, default=0)


def _whole_characters(data: bytes, *, final: bool) -> tuple[str, int]:
    """The text of `data` and how many bytes it used: a character cut in two at the end is
    left for the next answer (unless nothing more will come), never shown as garbage."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    text = decoder.decode(data, final=final)
    pending, _ = decoder.getstate()
    return text, len(data) - len(pending)


def _output_from(run: JobRun, offset: int) -> list[OutputChunk]:
    """The stored output from byte `offset` on: whole chunks, and the end of the one that
    holds `offset` when it falls inside it (after a character held back)."""
    chunks = list(OutputChunk.objects.filter(run=run, offset__gte=offset).order_by("offset", "id"))
    inside = OutputChunk.objects.filter(run=run, offset__lt=offset).order_by("-offset").first()
    if inside is not None and inside.offset + len(inside.data) > offset:
        inside.data = bytes(inside.data)[offset - inside.offset :]
        inside.offset = offset
        chunks.insert(0, inside)
    return chunks


class RunOutput(Visible, APIView):
    """The output after byte `offset`, and the run's state. With `wait`, the answer waits up
    to that many seconds for new output or the run's end (a client follows a run by asking
    again from `next_offset` until `finished`)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("offset", int, description="Bytes already read (default 0)."),
            OpenApiParameter(
                "wait", float, description=f"Seconds to wait for news (0 to {LONGEST_WAIT:.0f})."
            ),  # fmt: skip
        ],
        responses=s.OutputSerializer,
    )
    def get(self, request: Request, pk: int) -> Response:
        query = OffsetQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        offset, wait = query.validated_data["offset"], query.validated_data["wait"]
        run = _run(request, pk)
        give_up = time.monotonic() + wait
        while True:
            # The state first, then the output: a run's last output is stored before it is
            # marked finished, so "finished" here means nothing more will come.
            chunks = _output_from(run, offset)
            if chunks or run.finished or time.monotonic() >= give_up:
                break
            time.sleep(POLL)
            run.refresh_from_db(fields=["state", "exit_code", "error", "finished_at"])
        data = b"".join(bytes(c.data) for c in chunks)
        start = chunks[0].offset if chunks else offset
        text, used = _whole_characters(data, final=run.finished)
        body = {
            "offset": start,
            "next_offset": start + used,
            "text": text,
            "state": run.state,
            "finished": run.finished,
            "exit_code": run.exit_code,
            "error": run.error,
        }
        return Response(body)


class RunCancel(Visible, APIView):
    """Cancel a run: your own with the operator's right, anyone's with the zone admin's."""

    @extend_schema(request=None, responses=s.OutcomeSerializer)
    def post(self, request: Request, pk: int) -> Response:
        run = _run(request, pk)
        require(request, Action.CANCEL_RUN, run)
        outcome = launching.cancel(request.user, run, request=request)
        run.refresh_from_db()
        words = "Cancelled." if outcome == "cancelled" else "Stopping the run on the host."
        return Response({"detail": words, "run": s.RunSerializer(run, context={
            "request": request}).data})  # fmt: skip


class RunDecide(Visible, APIView):
    """Approve or reject a run awaiting approval (a second person; never the requester)."""

    verdict = "approve"

    @extend_schema(request=s.ReasonSerializer, responses=s.OutcomeSerializer)
    def post(self, request: Request, pk: int) -> Response:
        run = _run(request, pk)
        require(request, Action.APPROVE, run)
        given = s.ReasonSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        decide = launching.approve if self.verdict == "approve" else launching.reject
        decide(request.user, run, given.validated_data["reason"], request=request)
        run.refresh_from_db()
        words = "Approved and queued." if self.verdict == "approve" else "Rejected."
        return Response({"detail": words, "run": s.RunSerializer(run, context={
            "request": request}).data})  # fmt: skip


class RunApprove(RunDecide):
    verdict = "approve"


class RunReject(RunDecide):
    verdict = "reject"
