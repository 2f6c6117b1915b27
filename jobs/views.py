from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from hosts.models import Host
from remora_admin.access.guards import get_for_user, require
from remora_admin.access.policy import Action, can, holds_globally, scope

from . import launch as launching
from . import recipes, resolve
from .forms import DecisionForm, RunFilterForm
from .models import JobRun, OutputChunk, Resolution, RunState
from .paging import newest
from .queue import QueueUnavailable

PAGE = 50


def _runs_for(request: HttpRequest):
    return scope(
        JobRun.objects.select_related("host__zone", "requested_by", "approved_by"),
        request.user,
        via="host__zone",
    )


@login_required
def run_list(request: HttpRequest) -> HttpResponse:
    runs = _runs_for(request)
    form = RunFilterForm(request.GET or None)
    if form.is_valid():
        f = form.cleaned_data
        if f["host"]:
            runs = runs.filter(host__name=f["host"])
        if f["recipe"]:
            runs = runs.filter(recipe=f["recipe"])
        if f["state"]:
            runs = runs.filter(state=f["state"])
        if f["person"]:
            runs = runs.filter(requested_by__username=f["person"])
        if f["batch"]:
            runs = runs.filter(batch=f["batch"])
    awaiting = [
        r
        for r in _runs_for(request).filter(state=RunState.AWAITING_APPROVAL)[:20]
        if can(request.user, Action.APPROVE, r)
    ]
    context = {
        "runs": newest(runs, PAGE),
        "form": form,
        "awaiting": awaiting,
        "recipes": sorted(recipes.REGISTRY.values(), key=lambda r: r.title),
        "states": RunState.choices,
    }
    template = "jobs/run_list.html#rows" if request.htmx else "jobs/run_list.html"
    return render(request, template, context)


# What fixes each blocker, and who may (the policy decides; the link shows only to them).
FIXES: dict[str, list[tuple[Action, str, str]]] = {
    "host_inactive": [(Action.EDIT_INVENTORY, "hosts:edit", "Mark it active on its edit page.")],
    "no_credential": [
        (Action.EDIT_INVENTORY, "hosts:edit", "Assign a credential on its edit page."),
        (Action.MANAGE_CREDENTIALS, "hosts:credentials", "Create or find one on the Keys page."),
    ],
    "credential_zone": [
        (Action.EDIT_INVENTORY, "hosts:edit", "Assign one of its zone's credentials."),
    ],
    "untrusted_key": [
        (Action.TRUST_HOST_KEY, "hosts:detail", "Scan and trust its key on the host's page.")
    ],
    "key_changed": [
        (Action.TRUST_HOST_KEY, "hosts:detail", "Compare and trust its key on the host's page.")
    ],
}


@dataclass(frozen=True)
class Blocker:
    code: str
    message: str
    fixes: list[tuple[str, str]]  # (words, url), only those this person may follow


def _blockers(request: HttpRequest, host: Host) -> list[Blocker]:
    found = []
    for refusal in launching.blockers(host):
        fixes = [
            (words, reverse(url, args=[] if url == "hosts:credentials" else [host.name]))
            for action, url, words in FIXES.get(refusal.code, [])
            if can(request.user, action, host)
        ]
        found.append(Blocker(refusal.code, refusal.message, fixes))
    return found


@login_required
def launch(request: HttpRequest, name: str) -> HttpResponse:
    """Choose a recipe for a host, fill its parameters, preview the exact script, launch.

    What keeps any run from the host (inactive, no credential, untrusted key) is said at once,
    once, with the link to fix it for those who may; the launch buttons are then disabled."""
    host = get_for_user(request, Host.objects.select_related("zone", "credential"), name=name)
    blockers = _blockers(request, host)
    available = [
        r
        for r in sorted(recipes.REGISTRY.values(), key=lambda r: (r.category, r.title))
        if r.applies_to(host) and can(request.user, r.needs, host)
    ]
    recipe = recipes.get(request.GET.get("recipe") or request.POST.get("recipe") or "")
    if recipe is None:
        context = {"host": host, "available": available, "blockers": blockers}
        return render(request, "jobs/launch.html", context)
    require(request, recipe.needs, host)
    others = [
        h
        for h in scope(Host.objects.select_related("zone", "credential"), request.user)
        .filter(active=True)
        .exclude(pk=host.pk)
        if recipe.applies_to(h) and can(request.user, recipe.needs, h)
    ]
    form = recipe.form(request.POST or None, host=host)
    also = set(request.POST.getlist("also"))
    context = {
        "host": host,
        "recipe": recipe,
        "form": form,
        "others": [(h, launching.blockers(h)) for h in others],
        "also": also,
        "blockers": blockers,
    }
    if request.method == "POST" and form.is_valid():
        params = form.cleaned_data
        context["script"] = recipe.render(params)
        if "launch" in request.POST or "dry_run" in request.POST:
            targets = [host, *[h for h in others if h.name in also]]
            try:
                runs = launching.launch(
                    request.user,
                    recipe,
                    targets,
                    params,
                    dry_run="dry_run" in request.POST,
                    request=request,
                    override_freeze=request.POST.get("override_freeze", "")[:300],
                )
            except launching.LaunchRefused as refusal:
                # Said once: what the page already shows above is not repeated in the form.
                shown = {b.code for b in blockers}
                for r in refusal.refusals or [launching.Refusal("", str(refusal), None)]:
                    if not (r.target == host and r.code in shown):
                        form.add_error(None, r.message)
                frozen = any(r.code == "frozen" for r in refusal.refusals)
                context["may_override"] = frozen and holds_globally(
                    request.user, Action.MANAGE_ACCESS
                )
            except QueueUnavailable as exc:
                return render(request, "503.html", {"message": str(exc)}, status=503)
            else:
                if len(runs) == 1:
                    return redirect(runs[0])
                return redirect(f"/runs/?batch={runs[0].batch}")
    return render(request, "jobs/launch.html", context)


def _run(request: HttpRequest, pk: int) -> JobRun:
    return get_for_user(
        request,
        JobRun.objects.select_related("host__zone", "requested_by", "approved_by", "credential"),
        pk=pk,
    )


@login_required
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(request, pk)
    chunks = list(run.chunks.order_by("offset", "id"))
    after = (chunks[-1].offset + len(chunks[-1].data)) if chunks else 0
    context = {
        "run": run,
        "chunks": chunks,
        "after": after,
        "may_cancel": not run.finished and can(request.user, Action.CANCEL_RUN, run),
        "may_approve": run.state == RunState.AWAITING_APPROVAL
        and can(request.user, Action.APPROVE, run),
        "may_resolve": run.state == RunState.LOST and can(request.user, Action.CANCEL_RUN, run),
    }
    return render(request, "jobs/run_detail.html", context)


@login_required
def run_output(request: HttpRequest, pk: int) -> HttpResponse:
    """The output after byte `after`, and the run's status; polled while the run is live."""
    run = _run(request, pk)
    try:
        after = max(int(request.GET.get("after", "0")), 0)
    except ValueError:
        raise Http404("Bad offset.") from None
    chunks = list(OutputChunk.objects.filter(run=run, offset__gte=after).order_by("offset", "id"))
    new_after = (chunks[-1].offset + len(chunks[-1].data)) if chunks else after
    context = {
        "run": run,
        "chunks": chunks,
        "after": new_after,
        "may_cancel": not run.finished and can(request.user, Action.CANCEL_RUN, run),
        "oob": True,
    }
    return render(request, "jobs/run_detail.html#live", context)


@require_POST
@login_required
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(request, pk)
    require(request, Action.CANCEL_RUN, run)
    try:
        outcome = launching.cancel(request.user, run, request=request)
    except launching.NotAllowed:
        raise  # a 403 with the policy's words
    except launching.LaunchRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(
            request, "Cancelled." if outcome == "cancelled" else "Stopping the run on the host…"
        )
    return redirect(run)


@require_POST
@login_required
def run_resolve(request: HttpRequest, pk: int, kill: bool) -> HttpResponse:
    """Ask a lost run's host what happened to it, or kill what still runs of it there: the
    right to cancel the run decides."""
    run = _run(request, pk)
    require(request, Action.CANCEL_RUN, run)
    if run.state != RunState.LOST:
        messages.error(request, "Only a lost run is asked about on its host.")
        return redirect(run)
    if kill and run.resolution != Resolution.RUNNING:
        messages.error(request, "Nothing of this run is known to be running on the host.")
        return redirect(run)
    try:
        resolve.ask(run, kill=kill, actor=request.user, request=request)
    except QueueUnavailable as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Killing what still runs of it on the host…" if kill else
                         "Asking the host what happened…")  # fmt: skip
    return redirect(run)


@require_POST
@login_required
def run_decide(request: HttpRequest, pk: int, verdict: str) -> HttpResponse:
    run = _run(request, pk)
    require(request, Action.APPROVE, run)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a reason; the requester reads it.")
        return redirect(run)
    decide = launching.approve if verdict == "approve" else launching.reject
    try:
        decide(request.user, run, form.cleaned_data["reason"], request=request)
    except launching.NotAllowed:
        raise  # a 403 with the policy's words
    except launching.LaunchRefused as refusal:
        messages.error(request, str(refusal))
    except QueueUnavailable as exc:
        return render(request, "503.html", {"message": str(exc)}, status=503)
    else:
        messages.success(request, "Approved and queued." if verdict == "approve" else "Rejected.")
    return redirect(run)
