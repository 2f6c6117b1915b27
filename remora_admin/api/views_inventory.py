"""Hosts, services, growth phases, the plan between them, and the recipes: what the console
knows, scoped to what the caller may see (the one policy's queryset scope)."""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hosts.models import GrowthPhase, Host, Service
from jobs import batches, planner, recipes
from jobs.models import PlanBatch
from remora_admin.access.guards import get_for_user, require
from remora_admin.access.policy import Action, can, scope

from . import serializers as s


class Visible:
    """List views of global scope: the caller must be allowed to look at all (any role)."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        require(request, Action.VIEW)


class HostList(Visible, generics.ListAPIView):
    """The hosts you may see, with their services."""

    serializer_class = s.HostSerializer
    pagination_class = None

    def get_queryset(self):
        hosts = Host.objects.select_related("zone").prefetch_related("services")
        return scope(hosts, self.request.user).order_by("name")


class HostDetail(Visible, generics.RetrieveAPIView):
    serializer_class = s.HostSerializer
    lookup_field = "name"

    def get_object(self):
        hosts = Host.objects.select_related("zone").prefetch_related("services")
        return get_for_user(self.request, hosts, name=self.kwargs["name"])


class ServiceList(Visible, generics.ListAPIView):
    """Every service on the hosts you may see, with its last known state."""

    serializer_class = s.ServiceSerializer
    pagination_class = None

    def get_queryset(self):
        services = Service.objects.select_related("host__zone")
        return scope(services, self.request.user, via="host__zone").order_by("host__name", "kind")


class PhaseList(Visible, generics.ListAPIView):
    """The growth phases in order; `is_current` marks where the stack is."""

    serializer_class = s.PhaseSerializer
    pagination_class = None

    def get_queryset(self):
        return GrowthPhase.objects.prefetch_related("placements__host").order_by("number")


def _parameters(recipe, host=None) -> list[dict]:
    form = recipe.form(host=host)
    return [s.describe_field(name, field) for name, field in form.fields.items()]


def _recipe_row(recipe, host=None) -> dict:
    return {
        "name": recipe.name,
        "title": recipe.title,
        "description": recipe.description,
        "category": str(recipe.category),
        "needs": str(recipe.needs),
        "changes_host": recipe.changes_host,
        "timeout": recipe.timeout,
        "service_kinds": list(recipe.service_kinds),
        "parameters": _parameters(recipe, host),
    }


HOST_PARAM = OpenApiParameter(
    "host", str, description="Only recipes that apply to this host and that you may launch "
    "there; parameters as offered for it."
)  # fmt: skip


class RecipeList(Visible, APIView):
    """Every recipe with its parameters (the same form validates them as in the browser)."""

    @extend_schema(parameters=[HOST_PARAM], responses=s.RecipeSerializer(many=True))
    def get(self, request: Request) -> Response:
        host = None
        if request.query_params.get("host"):
            host = get_for_user(request, Host.objects.select_related("zone"),
                                name=request.query_params["host"])  # fmt: skip
        rows = [
            _recipe_row(r, host)
            for r in sorted(recipes.REGISTRY.values(), key=lambda r: (r.category, r.name))
            if host is None or (r.applies_to(host) and can(request.user, r.needs, host))
        ]
        return Response(rows)


class RecipeDetail(Visible, APIView):
    @extend_schema(parameters=[HOST_PARAM], responses=s.RecipeSerializer)
    def get(self, request: Request, name: str) -> Response:
        recipe = recipes.get(name)
        if recipe is None:
            raise Http404(f"There is no recipe named {name}.")
        host = None
        if request.query_params.get("host"):
            host = get_for_user(request, Host.objects.select_related("zone"),
                                name=request.query_params["host"])  # fmt: skip
        return Response(_recipe_row(recipe, host))


def _visible_names(request) -> set[str]:
    return set(scope(Host.objects.all(), request.user).values_list("name", flat=True))


FROM_NOTHING = OpenApiParameter(
    "from", str, enum=["nothing"], description="'nothing': install the current phase on fresh "
    "hosts, instead of going from the current phase to the next."
)  # fmt: skip


def _plan(request, from_nothing: bool) -> tuple:
    current, after = batches.phases()
    start, target = (None, current) if from_nothing else (current, after)
    steps = batches.steps_between(start, target) if target else []
    return current, start, target, steps


class Plan(Visible, APIView):
    """The plan: the ordered steps from the current phase to the next (or from nothing), the
    values it needs, and whether you may apply it."""

    @extend_schema(parameters=[FROM_NOTHING], responses=s.PlanSerializer)
    def get(self, request: Request) -> Response:
        from_nothing = request.query_params.get("from") == "nothing"
        current, start, target, steps = _plan(request, from_nothing)
        visible = _visible_names(request)
        shown = [(n, st) for n, st in enumerate(steps, start=1) if st.host.name in visible]
        running = PlanBatch.objects.filter(status=PlanBatch.Status.RUNNING).first()
        proposals = planner.proposals(target) if target else {}
        body = {
            "current": current.number if current else None,
            "target": target.number if target else None,
            "from_nothing": from_nothing,
            "steps": [
                {
                    "number": n,
                    "recipe": st.recipe,
                    "host": st.host.name,
                    "why": st.why,
                    "params": st.params,
                }
                for n, st in shown
            ],  # fmt: skip
            "hidden_steps": len(steps) - len(shown),
            "inputs": [
                {
                    "name": i.name,
                    "label": i.label,
                    "help": i.help,
                    "secret": i.secret,
                    "initial": None if i.secret else proposals.get(i.name) or i.initial or None,
                }
                for i in planner.inputs_needed(steps)
            ],  # fmt: skip
            "may_apply": target is not None
            and len(shown) == len(steps)
            and all(can(request.user, recipes.get(st.recipe).needs, st.host) for st in steps),
            "running_batch": running.pk if running else None,
        }
        return Response(body)


class PlanApply(Visible, APIView):
    """Apply the plan: its steps run one after the other as a batch of runs (audited)."""

    @extend_schema(request=s.ApplySerializer, responses={201: s.BatchSerializer})
    def post(self, request: Request) -> Response:
        given = s.ApplySerializer(data=request.data)
        given.is_valid(raise_exception=True)
        current, start, target, steps = _plan(request, given.validated_data["from_nothing"])
        if target is None:
            return _refused(["There is no phase to go to."])
        if given.validated_data["to"] != target.number:
            return _refused([f"The plan goes to phase {target.number}, not "
                             f"{given.validated_data['to']}: check it again."])  # fmt: skip
        proposals = planner.proposals(target)
        values = {**proposals, **given.validated_data["inputs"]}
        try:
            batch = batches.apply(request.user, start, target, values, request=request)
        except batches.PlanRefused as refused:
            return _refused(refused.problems)
        context = {"request": request, "visible": _visible_names(request)}
        return Response(s.BatchSerializer(batch, context=context).data, status=201)


def _refused(problems: list[str]) -> Response:
    body = {"detail": " ".join(problems), "code": "plan_refused", "problems": problems}
    return Response(body, status=status.HTTP_409_CONFLICT)


def _batch(request, pk: int) -> PlanBatch:
    batch = PlanBatch.objects.select_related("from_phase", "to_phase", "requested_by")
    batch = batch.filter(pk=pk).first()
    if batch is None or not batch.steps.filter(host__name__in=_visible_names(request)).exists():
        raise Http404("No such plan.")
    return batch


class BatchDetail(Visible, APIView):
    """A plan's batch as it runs: each step's status and run."""

    @extend_schema(responses=s.BatchSerializer)
    def get(self, request: Request, pk: int) -> Response:
        batch = _batch(request, pk)
        context = {"request": request, "visible": _visible_names(request)}
        return Response(s.BatchSerializer(batch, context=context).data)


class BatchResume(Visible, APIView):
    """Start a plan that stopped at a failed step again from that step."""

    @extend_schema(request=None, responses=s.BatchSerializer)
    def post(self, request: Request, pk: int) -> Response:
        batch = _batch(request, pk)
        try:
            batches.resume(request.user, batch, request=request)
        except batches.PlanRefused as refused:
            return _refused(refused.problems)
        context = {"request": request, "visible": _visible_names(request)}
        return Response(s.BatchSerializer(batch, context=context).data)
