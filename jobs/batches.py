"""Applying a growth plan: an ordered batch of runs, one step at a time, stopped by a failure.

`apply` checks everything it can before anything runs (the policy for every step's host, the
hosts' readiness, every step's parameters through its recipe's own form, the inputs) and
creates the batch with its steps, audited; a worker then `advance`s it: the next step's status
companion asks the host whether the step is already satisfied (then it is skipped), else the
step's run is launched through `launch(...)` as the person who applied (approval applies in a
restricted zone). When that run ends, the worker that ran it asks for the plan to move on; the
ticker asks too, for decisions taken elsewhere (a rejection, a run marked lost). A failed step
stops the batch; `resume` starts that step again once it is fixed. When every step succeeded,
the plan's phase becomes the current one, its services are recorded, and the batch's passwords
are erased.
"""

import json
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from hosts.changes import make_current, sync_services
from hosts.credentials import decrypt, encrypt
from hosts.models import GrowthPhase, Host
from remora_admin.access.policy import Action, decide
from remora_admin.audit.log import record

from . import planner, queue
from .launch import LaunchRefused, blockers, launch, proven_second_factor
from .models import FINISHED, PlanBatch, PlanStep, RunState
from .recipes import get, render_status
from .tasks import ask_status

S = PlanStep.Status
HOLD = timedelta(minutes=10)  # a worker's hold on a batch it advances (a status check is short)


class PlanRefused(Exception):
    """The plan was not applied (or resumed); `problems` says why, each in words."""

    def __init__(self, problems: list[str]):
        super().__init__(" ".join(problems))
        self.problems = problems


def phases() -> tuple[GrowthPhase | None, GrowthPhase | None]:
    """The current phase and the one after it."""
    current = GrowthPhase.objects.filter(is_current=True).first()
    after = GrowthPhase.objects.filter(number__gt=current.number if current else -1).first()
    return current, after


def steps_between(start: GrowthPhase | None, target: GrowthPhase) -> list[planner.Step]:
    return planner.desired(target) if start is None else planner.plan(start, target)


def _form(recipe, host: Host, params: dict, inputs: dict[str, str], values: dict[str, str]):
    data = {**params}
    for name, param in inputs.items():
        if values.get(name):
            data[param] = values[name]
    return recipe.form(data, host=host, fill_missing=True)


def _errors(form) -> str:
    def label(name: str) -> str:
        if name not in form.fields:
            return "parameters"
        return str(form.fields[name].label or name.replace("_", " ").capitalize())

    return "; ".join(f"{label(n)}: {' '.join(m)}" for n, m in form.errors.items())


def apply(
    actor: Any,
    start: GrowthPhase | None,
    target: GrowthPhase,
    values: dict[str, str],
    *,
    request: HttpRequest | None = None,
    second_factor: bool | None = None,
) -> PlanBatch:
    """Create the batch from `start` (None: fresh hosts) to `target` and have it run; or
    raise PlanRefused, audited, with every reason in words, having changed nothing."""
    verified = proven_second_factor(actor, request, second_factor)
    current, after = phases()
    problems: list[str] = []
    if not ((start is None and target == current) or (start == current and target == after)):
        problems.append(
            "A plan goes from the current phase to the next one, or installs the current phase "
            "from nothing; the phases changed since this page was shown."
        )
    elif PlanBatch.objects.filter(status=PlanBatch.Status.RUNNING).exists():
        problems.append("Another plan is running: wait for it to end.")
    steps = steps_between(start, target) if not problems else []
    missing = [n.label for n in planner.inputs_needed(steps) if not values.get(n.name)]
    problems += [f"{label}: this plan needs it." for label in missing]
    hosts_told: set[int] = set()
    for number, step in enumerate(steps, start=1):
        recipe = get(step.recipe)
        decision = decide(actor, recipe.needs, step.host, second_factor=verified)
        where = f"Step {number} ({recipe.title} on {step.host.name})"
        if not decision.allowed:
            if not decide(actor, Action.VIEW, step.host).allowed:  # never name a hidden host
                problems.append(f"Step {number} runs on a host you may not see: only someone "
                                "who may act on every host of the plan applies it.")  # fmt: skip
            else:
                problems.append(f"{where}: {decision.message}")
            continue
        if step.host.pk not in hosts_told:
            hosts_told.add(step.host.pk)
            problems.extend(b.message for b in blockers(step.host))
        form = _form(recipe, step.host, step.params, step.inputs, values)
        if not missing and not form.is_valid():  # a missing input is said once, above
            problems.append(f"{where}: {_errors(form)}")
    secrets = {i.name for i in planner.INPUTS.values() if i.secret}
    public = {k: v for k, v in values.items() if k in planner.INPUTS and k not in secrets and v}
    hidden = {k: v for k, v in values.items() if k in secrets and v}
    if problems:
        record(
            "plan.refused",
            request=request,
            actor=actor,
            target=target,
            details={"from": start.number if start else None, "problems": problems},
        )
        raise PlanRefused(problems)
    with transaction.atomic():
        batch = PlanBatch.objects.create(
            from_phase=start,
            to_phase=target,
            requested_by=actor,
            second_factor=verified,
            inputs=public,
            secret_inputs=encrypt(json.dumps(hidden)) if hidden else b"",
        )
        PlanStep.objects.bulk_create(
            PlanStep(
                batch=batch,
                position=number,
                recipe=step.recipe,
                host=step.host,
                params=step.params,
                inputs=step.inputs,
                why=step.why,
            )
            for number, step in enumerate(steps, start=1)
        )
        record(
            "plan.applied",
            request=request,
            actor=actor,
            target=batch,
            details={
                "from": start.number if start else None,
                "to": target.number,
                "steps": [
                    {"recipe": s.recipe, "host": s.host.name, "params": s.params, "why": s.why}
                    for s in steps
                ],
                "inputs": public,
                "secret_inputs": sorted(hidden),
                "second_factor": verified,
            },
        )
        transaction.on_commit(lambda: queue.enqueue_advance(batch.pk))
    return batch


def resume(
    actor: Any,
    batch: PlanBatch,
    *,
    request: HttpRequest | None = None,
    second_factor: bool | None = None,
) -> None:
    """Start a stopped batch again from its failed step (the person fixed what failed)."""
    verified = proven_second_factor(actor, request, second_factor)
    failed = batch.steps.filter(status=S.FAILED).select_related("host__zone").first()
    problems = []
    if batch.status != PlanBatch.Status.FAILED or failed is None:
        problems.append("This plan has not stopped at a failed step.")
    elif PlanBatch.objects.filter(status=PlanBatch.Status.RUNNING).exists():
        problems.append("Another plan is running: wait for it to end.")
    else:
        recipe = get(failed.recipe)
        decision = decide(actor, recipe.needs, failed.host, second_factor=verified)
        if not decision.allowed:
            problems.append(decision.message)
        problems.extend(b.message for b in blockers(failed.host))
    if problems:
        record("plan.refused", request=request, actor=actor, target=batch, details={
            "attempt": "resume", "problems": problems})  # fmt: skip
        raise PlanRefused(problems)
    with transaction.atomic():
        moved = PlanBatch.objects.filter(pk=batch.pk, status=PlanBatch.Status.FAILED).update(
            status=PlanBatch.Status.RUNNING, finished_at=None, requested_by=actor,
            second_factor=verified,
        )  # fmt: skip
        if not moved:
            raise PlanRefused(["This plan was resumed already."])
        PlanStep.objects.filter(pk=failed.pk).update(status=S.PENDING)
        record(
            "plan.resumed",
            request=request,
            actor=actor,
            target=batch,
            details={"step": failed.position, "recipe": failed.recipe, "host": failed.host.name,
                     "previous_run": failed.run_id, "second_factor": verified},
        )  # fmt: skip
        transaction.on_commit(lambda: queue.enqueue_advance(batch.pk))
    batch.refresh_from_db()


# --- The worker's side ------------------------------------------------------------------------


def advance(batch_id: int) -> str:
    """Move the batch on as far as it can go now (a worker's job). One worker at a time holds
    a batch; another asking meanwhile returns at once."""
    outcome = "busy"
    for _ in range(3):  # a run that ended while this worker held the batch: look again
        now = timezone.now()
        held = PlanBatch.objects.filter(
            Q(advancing_until__isnull=True) | Q(advancing_until__lt=now),
            pk=batch_id,
            status=PlanBatch.Status.RUNNING,
        ).update(advancing_until=now + HOLD)
        if not held:
            return outcome
        try:
            outcome = _advance(PlanBatch.objects.select_related("to_phase").get(pk=batch_id))
        finally:
            PlanBatch.objects.filter(pk=batch_id).update(advancing_until=None)
        if outcome != "waiting" or not _current_run_finished(batch_id):
            return outcome
    return outcome


def _current_run_finished(batch_id: int) -> bool:
    return PlanStep.objects.filter(
        batch_id=batch_id, status=S.LAUNCHED, run__state__in=FINISHED
    ).exists()


def stalled() -> list[int]:
    """Running batches that need a worker: a step whose run ended, or a step not started, and
    nobody holding the batch (the ticker asks for these)."""
    now = timezone.now()
    free = PlanBatch.objects.filter(
        Q(advancing_until__isnull=True) | Q(advancing_until__lt=now),
        status=PlanBatch.Status.RUNNING,
    )
    live = PlanStep.objects.filter(status=S.LAUNCHED).exclude(run__state__in=FINISHED)
    return list(free.exclude(steps__in=live).values_list("pk", flat=True).distinct())


def _step_event(action: str, step: PlanStep, **details: Any) -> None:
    record(
        action,
        actor_name="worker",
        target=step.batch,
        zone=step.host.zone.name,
        details={"step": step.position, "recipe": step.recipe, "host": step.host.name, **details},
    )


def _fail(batch: PlanBatch, step: PlanStep, note: str, **details: Any) -> str:
    with transaction.atomic():
        PlanStep.objects.filter(pk=step.pk).update(status=S.FAILED, note=note)
        PlanBatch.objects.filter(pk=batch.pk).update(
            status=PlanBatch.Status.FAILED, finished_at=timezone.now()
        )
        _step_event("plan.step_failed", step, note=note, **details)
    return "failed"


def _advance(batch: PlanBatch) -> str:
    values = json.loads(decrypt(batch.secret_inputs)) if batch.secret_inputs else {}
    values.update(batch.inputs)
    for step in batch.steps.select_related("host__zone", "host__credential", "run", "batch"):
        if step.status in (S.IN_PLACE, S.SUCCEEDED):
            continue
        if step.status == S.FAILED:
            return _fail(batch, step, step.note)
        if step.status == S.LAUNCHED:
            run = step.run
            if run is None or not run.finished:
                return "waiting"
            if run.state != RunState.SUCCEEDED:
                said = run.error or run.get_state_display()
                note = f"run #{run.pk} {run.get_state_display().lower()}: {said}"
                return _fail(batch, step, note, run=run.pk)
            with transaction.atomic():
                PlanStep.objects.filter(pk=step.pk).update(status=S.SUCCEEDED)
                _step_event("plan.step_succeeded", step, run=run.pk)
            continue
        if not _start(batch, step, values):
            return "failed"
        if PlanStep.objects.get(pk=step.pk).status == S.LAUNCHED:
            return "waiting"
    return _succeed(batch)


def _start(batch: PlanBatch, step: PlanStep, values: dict[str, str]) -> bool:
    """Ask the host whether the step is in place (skip it) or launch its run. False when
    the step failed."""
    recipe = get(step.recipe)
    if recipe is None:
        _fail(batch, step, f"unknown recipe {step.recipe}")
        return False
    form = _form(recipe, step.host, step.params, step.inputs, values)
    if not form.is_valid():
        _fail(batch, step, f"the parameters are no longer valid: {_errors(form)}")
        return False
    script = render_status(recipe, form.cleaned_data)
    if script is not None:
        PlanStep.objects.filter(pk=step.pk).update(status=S.CHECKING)
        code, said = ask_status(recipe, step.host, script)
        if code == 0:
            with transaction.atomic():
                PlanStep.objects.filter(pk=step.pk).update(status=S.IN_PLACE, note=said.strip())
                _step_event("plan.step_in_place", step, status=said.strip()[-300:])
            return True
        if code != 3:
            _fail(batch, step, f"asking the host failed: {said.strip()[-500:]}", exit_code=code)
            return False
    try:
        [run] = launch(
            batch.requested_by,
            recipe,
            [step.host],
            form.cleaned_data,
            second_factor=batch.second_factor,
        )
    except LaunchRefused as refused:
        _fail(batch, step, f"the run was refused: {refused}")
        return False
    with transaction.atomic():
        note = f"missing before the run: {said.strip()}" if script is not None else ""
        PlanStep.objects.filter(pk=step.pk).update(status=S.LAUNCHED, run=run, note=note)
        _step_event("plan.step_launched", step, run=run.pk, state=run.state)
    return True


def _succeed(batch: PlanBatch) -> str:
    with transaction.atomic():
        moved = PlanBatch.objects.filter(pk=batch.pk, status=PlanBatch.Status.RUNNING).update(
            status=PlanBatch.Status.SUCCEEDED, finished_at=timezone.now(), secret_inputs=b""
        )
        if not moved:
            return "done"
        make_current(batch.to_phase, actor=batch.requested_by)
        sync_services(batch.to_phase, actor=batch.requested_by)
        record(
            "plan.succeeded",
            actor_name="worker",
            target=batch,
            details={"phase": batch.to_phase.number, "steps": batch.steps.count()},
        )
    return "succeeded"
