"""The Plan page: the current phase beside the next, the ordered steps between them, Apply;
and a plan's batch as it runs, step by step, with Resume when it stopped."""

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from hosts.diagram import topology
from hosts.models import GrowthPhase, Host
from hosts.plan import diff
from remora_admin.access.guards import requires
from remora_admin.access.policy import Action, can, scope

from . import batches, planner
from .models import PlanBatch
from .queue import QueueUnavailable
from .recipes import get


class InputsForm(forms.Form):
    """The values a plan needs beyond the inventory, only those its steps use."""

    def __init__(self, needed: list[planner.Input], *args, **kwargs):
        super().__init__(*args, **kwargs)
        for need in needed:
            widget = forms.PasswordInput(render_value=False) if need.secret else None
            self.fields[need.name] = forms.CharField(
                label=need.label,
                help_text=need.help,
                max_length=300,
                widget=widget,
                initial=need.initial or None,
            )


def _visible(request: HttpRequest) -> set[str]:
    return set(scope(Host.objects.all(), request.user).values_list("name", flat=True))


def _choice(request: HttpRequest) -> tuple[GrowthPhase | None, GrowthPhase | None, bool]:
    """(start, target, from_nothing) as the page or the form asks: the current phase to the
    next, or the current phase from fresh hosts."""
    current, after = batches.phases()
    source = request.POST if request.method == "POST" else request.GET
    if source.get("from") == "nothing":
        return None, current, True
    return current, after, False


def _picture(phase: GrowthPhase | None, before: GrowthPhase | None, visible: set[str]):
    if phase is None:
        return None
    change = diff(before, phase, visible)
    return topology(
        phase,
        added={(p.host.name, p.kind) for p in change.added} if before else set(),
        changed={(p.host.name, p.kind) for p in change.reconfigured},
        hosts=visible,
    )


def _page(request: HttpRequest, *, form=None, problems=None, status=200) -> HttpResponse:
    start, target, from_nothing = _choice(request)
    current, _ = batches.phases()
    visible = _visible(request)
    steps = batches.steps_between(start, target) if target else []
    shown = [s for s in steps if s.host.name in visible]
    rows = [
        {"number": n, "step": s, "recipe": get(s.recipe)}
        for n, s in enumerate(steps, start=1)
        if s.host.name in visible
    ]
    running = PlanBatch.objects.filter(status=PlanBatch.Status.RUNNING).first()
    may_apply = (
        target is not None
        and len(shown) == len(steps)
        and all(can(request.user, get(s.recipe).needs, s.host) for s in steps)
    )
    context = {
        "current": current,
        "target": target,
        "from_nothing": from_nothing,
        "rows": rows,
        "hidden_steps": len(steps) - len(shown),
        "current_picture": None if from_nothing else _picture(current, None, visible),
        "target_picture": _picture(target, start, visible),
        "form": form or InputsForm(planner.inputs_needed(steps), initial=planner.proposals(target)),
        "may_apply": may_apply,
        "running": running,
        "problems": problems or [],
        "batches": PlanBatch.objects.select_related("from_phase", "to_phase", "requested_by")[:10],
    }
    return render(request, "jobs/plan.html", context, status=status)


@requires(Action.VIEW)
def plan_page(request: HttpRequest) -> HttpResponse:
    return _page(request)


@require_POST
@requires(Action.VIEW)
def plan_apply(request: HttpRequest) -> HttpResponse:
    start, target, _ = _choice(request)
    if target is None:
        return _page(request, problems=["There is no phase to go to."], status=400)
    steps = batches.steps_between(start, target)
    form = InputsForm(planner.inputs_needed(steps), request.POST)
    if not form.is_valid():
        return _page(request, form=form, problems=["Fill in what the plan needs."], status=400)
    if str(target.number) != request.POST.get("to"):
        problem = "The phases changed since this page was shown: check the plan again."
        return _page(request, form=form, problems=[problem], status=400)
    try:
        batch = batches.apply(request.user, start, target, form.cleaned_data, request=request)
    except batches.PlanRefused as refused:
        return _page(request, form=form, problems=refused.problems, status=400)
    except QueueUnavailable as exc:
        return render(request, "503.html", {"message": str(exc)}, status=503)
    messages.success(request, f"Plan #{batch.pk} applied: its steps run one after the other.")
    return redirect(batch)


def _batch(request: HttpRequest, pk: int) -> PlanBatch:
    batch = PlanBatch.objects.select_related("from_phase", "to_phase", "requested_by")
    batch = batch.filter(pk=pk).first()
    visible = _visible(request)
    if batch is None or not batch.steps.filter(host__name__in=visible).exists():
        raise Http404("No such plan.")
    return batch


@requires(Action.VIEW)
def plan_batch(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _batch(request, pk)
    visible = _visible(request)
    steps = list(batch.steps.select_related("host", "run").order_by("position"))
    shown = [s for s in steps if s.host.name in visible]
    failed = next((s for s in steps if s.status == "failed"), None)
    context = {
        "batch": batch,
        "steps": [{"step": s, "recipe": get(s.recipe)} for s in shown],
        "hidden_steps": len(steps) - len(shown),
        "done": sum(s.status in ("in_place", "succeeded") for s in steps),
        "total": len(steps),
        "failed": failed,
        "may_resume": failed is not None
        and batch.status == PlanBatch.Status.FAILED
        and can(request.user, get(failed.recipe).needs, failed.host),
    }
    if request.htmx:
        response = render(request, "jobs/plan_batch.html#progress", context)
        if batch.status != PlanBatch.Status.RUNNING:
            response.status_code = HttpResponseStopPolling.status_code
        return response
    return render(request, "jobs/plan_batch.html", context)


@require_POST
@requires(Action.VIEW)
def plan_resume(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _batch(request, pk)
    try:
        batches.resume(request.user, batch, request=request)
    except batches.PlanRefused as refused:
        messages.error(request, " ".join(refused.problems))
    except QueueUnavailable as exc:
        return render(request, "503.html", {"message": str(exc)}, status=503)
    else:
        messages.success(request, "Resumed from the failed step.")
    return redirect(batch)
