"""Launching, approving, rejecting and cancelling runs: checked, audited, then delivered.

Everything that starts or decides on a run (the browser, the planner, the scheduler, the API)
calls these functions with the person who acts (`actor`); a request, when there is one, only
adds the client's address to the audit events and lets the policy read the session's second
factor. Without a request the second factor is unproven unless the caller says otherwise
(`second_factor=True`, e.g. a scheduler acting on a launch that was checked with it), so a change
in a restricted zone is refused.

Every refusal is raised as `LaunchRefused` with its reason in words (`NotAllowed` when the
policy said no; it is also a PermissionDenied, a 403 in a view) and audited with its target
and zone: `access.denied` for the policy, `run.refused` for the rest.
"""

import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from hosts.credentials import encrypt
from remora_admin.access.policy import Action, Decision, decide, holds_globally, is_verified
from remora_admin.audit.log import record

from . import hostqueue, maintenance, queue
from .models import JobRun, RunState
from .recipes import Category, Recipe
from .states import transition


@dataclass(frozen=True)
class Refusal:
    """Why one thing may not happen, in words; `code` is for programs and the audit log."""

    code: str
    message: str
    target: Any = None  # the host (a launch) or the run (a decision, a cancel)


class LaunchRefused(Exception):
    """The launch (or approval, rejection, cancel) did not happen; the message says why."""

    def __init__(self, message: str, *, refusals: list[Refusal] | None = None):
        super().__init__(message)
        self.refusals = refusals or []

    @property
    def reason(self) -> str:
        return self.refusals[0].code if self.refusals else ""


class NotAllowed(LaunchRefused, PermissionDenied):
    """The policy refused; `decision` carries its reason (a 403 in a view)."""

    def __init__(self, decision: Decision, refusals: list[Refusal]):
        super().__init__(decision.message, refusals=refusals)
        self.decision = decision


def needs_approval(recipe: Recipe, host: Any) -> bool:
    return recipe.category == Category.PROVISION and host.zone.requires_approval


def blockers(host: Any) -> list[Refusal]:
    """What keeps any run from reaching `host`, whoever launches it (the launch page shows
    these at once; `launch` refuses with them)."""
    found = []
    if not host.active:
        found.append(
            Refusal(
                "host_inactive",
                f"{host.name} is not active (planned or retired); nothing runs there.",
            )
        )
    if host.credential_id is None:
        found.append(
            Refusal(
                "no_credential",
                f"{host.name} has no SSH credential, so no run can sign in there; "
                "a zone admin assigns one.",
            )
        )
    elif host.credential.zone_id != host.zone_id:
        found.append(
            Refusal(
                "credential_zone",
                f"{host.name}'s credential belongs to another zone; "
                "a zone admin assigns one of this zone.",
            )
        )
    if not host.host_key:
        found.append(
            Refusal(
                "untrusted_key",
                f"{host.name}'s host key is not trusted yet; scan it, then a zone admin trusts it.",
            )
        )
    elif host.host_key_alert:
        found.append(
            Refusal(
                "key_changed",
                f"{host.name} presented a host key other than the trusted one; nothing connects "
                "until a zone admin compares it and trusts the right one.",
            )
        )
    return [Refusal(b.code, b.message, host) for b in found]


def proven_second_factor(
    actor: Any, request: HttpRequest | None, second_factor: bool | None
) -> bool:
    """Whether the actor proved their second factor: as the caller says, else from the
    request's session when the request is the actor's own, else not."""
    if second_factor is not None:
        return second_factor
    user = getattr(request, "user", None)
    return actor is not None and user is not None and user.pk == actor.pk and is_verified(user)


def _zone_name(target: Any) -> str:
    host = getattr(target, "host", target)
    return host.zone.name


def _audit_refusal(
    refusal: Refusal,
    *,
    actor: Any,
    request: HttpRequest | None,
    attempt: str,
    by_policy: bool = False,
    **details: Any,
) -> None:
    """Record a refusal with its target, zone and reason: `access.denied` when the policy
    refused, `run.refused` when the run's own preconditions did."""
    record(
        "access.denied" if by_policy else "run.refused",
        request=request,
        actor=actor,
        target=refusal.target,
        zone=_zone_name(refusal.target),
        details={"attempt": attempt, "reason": refusal.code, "message": refusal.message, **details},
    )


def _ask(
    actor: Any,
    action: Action,
    target: Any,
    *,
    request: HttpRequest | None,
    verified: bool,
    attempt: str,
    **details: Any,
) -> Decision:
    decision = decide(actor, action, target, second_factor=verified)
    if not decision.allowed:
        _audit_refusal(
            Refusal(decision.reason or "no_role", decision.message, target),
            actor=actor,
            request=request,
            attempt=attempt,
            by_policy=True,
            action=str(action),
            **details,
        )
    return decision


def launch(
    actor: Any,
    recipe: Recipe,
    hosts: list[Any],
    params: dict[str, Any],
    *,
    dry_run: bool = False,
    request: HttpRequest | None = None,
    second_factor: bool | None = None,
    override_freeze: str = "",
    batch: uuid.UUID | None = None,
) -> list[JobRun]:
    """Create one run per host (a batch) with its audit event; queue them once committed.

    All or nothing: if the policy or a precondition refuses any host, nothing is created, each
    refusal is audited, and `LaunchRefused` says why for every host refused. A recipe that
    changes hosts is refused on a frozen host, unless a superadmin overrides the freeze with a
    reason (`override_freeze`, audited). `batch` puts the runs in a batch that already has runs
    (`launch_many`: one batch for a fan-out launched host by host); by default a new one.
    """
    verified = proven_second_factor(actor, request, second_factor)
    denied: Decision | None = None
    refusals: list[Refusal] = []
    overridden: list[tuple[Any, str]] = []
    for host in hosts:
        decision = _ask(
            actor,
            recipe.needs,
            host,
            request=request,
            verified=verified,
            attempt="launch",
            recipe=recipe.name,
        )
        if not decision.allowed:
            denied = denied or decision
            refusals.append(Refusal(decision.reason or "no_role", decision.message, host))
            continue
        for blocker in blockers(host):
            _audit_refusal(
                blocker, actor=actor, request=request, attempt="launch", recipe=recipe.name
            )
            refusals.append(blocker)
        frozen = maintenance.freeze_refusal(host, timezone.now()) if recipe.changes_host else ""
        if frozen and not dry_run:
            if override_freeze.strip() and holds_globally(actor, Action.MANAGE_ACCESS):
                overridden.append((host, frozen))
            else:
                refusal = Refusal("frozen", frozen, host)
                _audit_refusal(
                    refusal, actor=actor, request=request, attempt="launch", recipe=recipe.name
                )
                refusals.append(refusal)
    if denied is not None:
        raise NotAllowed(denied, refusals)
    if refusals:
        raise LaunchRefused(" ".join(r.message for r in refusals), refusals=refusals)
    queue.check_available()
    public = {k: v for k, v in params.items() if k not in recipe.secret_fields}
    secrets = {k: params[k] for k in recipe.secret_fields if params.get(k)}
    script = recipe.render(params)
    batch = batch or uuid.uuid4()
    runs = []
    with transaction.atomic():
        for host in hosts:
            waiting = needs_approval(recipe, host) and not dry_run
            run = JobRun.objects.create(
                batch=batch,
                recipe=recipe.name,
                params=public,
                secret_params=encrypt_secrets(secrets),
                script=script,
                dry_run=dry_run,
                host=host,
                credential=host.credential,
                changes_host=recipe.changes_host or bool(params.get("changes_host")),
                timeout=recipe.timeout,
                requested_by=actor,
                state=RunState.AWAITING_APPROVAL if waiting else RunState.QUEUED,
                queued_at=None if waiting else timezone.now(),
            )
            record(
                "run.requested",
                request=request,
                actor=actor,
                target=run,
                zone=host.zone.name,
                details={
                    "recipe": recipe.name,
                    "host": host.name,
                    "params": public,
                    "secret_params": sorted(secrets),
                    "script": script,
                    "dry_run": dry_run,
                    "batch": str(batch),
                    "state": run.state,
                    "second_factor": verified,
                },
            )
            for frozen_host, why in overridden:
                if frozen_host == host:
                    record(
                        "run.freeze_overridden",
                        request=request,
                        actor=actor,
                        target=run,
                        zone=host.zone.name,
                        details={"freeze": why, "reason": override_freeze.strip()},
                    )
            if not waiting:
                transaction.on_commit(lambda r=run: queue.enqueue(r.pk, r.timeout))
            runs.append(run)
    return runs


@dataclass(frozen=True)
class FanOut:
    """What a launch on many hosts did: the runs created (one per host, one batch, in the
    hosts' order) and the hosts refused, each with its reason."""

    runs: list[JobRun]
    refusals: list[Refusal]

    @property
    def refused_hosts(self) -> list[Any]:
        return list(dict.fromkeys(r.target for r in self.refusals))


def launch_many(
    actor: Any,
    recipe: Recipe,
    hosts: list[Any],
    params: dict[str, Any],
    *,
    all_or_nothing: bool = False,
    dry_run: bool = False,
    request: HttpRequest | None = None,
    second_factor: bool | None = None,
    override_freeze: str = "",
) -> FanOut:
    """Launch `recipe` on many hosts through `launch` (the same policy, checks and audit
    events), all runs in one batch; the workers run them in parallel.

    By default each host stands alone, as a sysadmin running a check or a command across a
    fleet expects: a host refused (no right there, inactive, untrusted key, frozen...) is
    reported with its reason (and audited, by `launch`) and the other hosts run. With
    `all_or_nothing` one refused host refuses them all and nothing is created (what a
    coordinated change wants); then the result has no runs and every host's refusals.

    One `launch` for all the hosts (one transaction: the runs reach the workers together);
    when some are refused, one more for the others. Should one of those be refused by then
    (its state changed in between), nothing more is tried: the refusals say why. A host named
    twice runs once. The job queue (Redis) down raises `QueueUnavailable`, as `launch` does.
    """
    hosts = list({host.pk: host for host in hosts}.values())
    options = {"dry_run": dry_run, "request": request, "second_factor": second_factor,
               "override_freeze": override_freeze, "batch": uuid.uuid4()}  # fmt: skip
    try:
        return FanOut(launch(actor, recipe, hosts, params, **options), [])
    except LaunchRefused as refused:
        refusals = refused.refusals
    if all_or_nothing:
        return FanOut([], refusals)
    refused_hosts = {r.target.pk for r in refusals if r.target is not None}
    rest = [host for host in hosts if host.pk not in refused_hosts]
    if not rest:
        return FanOut([], refusals)
    try:
        return FanOut(launch(actor, recipe, rest, params, **options), refusals)
    except LaunchRefused as again:
        return FanOut([], refusals + again.refusals)


def encrypt_secrets(secrets: dict[str, str]) -> bytes:
    return encrypt(json.dumps(secrets)) if secrets else b""


def _check(
    actor: Any,
    action: Action,
    run: JobRun,
    *,
    request: HttpRequest | None,
    second_factor: bool | None,
    attempt: str,
) -> None:
    """Ask the policy about `action` on `run`; raise NotAllowed (audited) when it says no."""
    verified = proven_second_factor(actor, request, second_factor)
    decision = _ask(actor, action, run, request=request, verified=verified, attempt=attempt)
    if not decision.allowed:
        raise NotAllowed(decision, [Refusal(decision.reason or "no_role", decision.message, run)])


def _refuse(
    code: str, message: str, run: JobRun, *, actor: Any, request: HttpRequest | None, attempt: str
) -> LaunchRefused:
    refusal = Refusal(code, message, run)
    _audit_refusal(refusal, actor=actor, request=request, attempt=attempt, state=run.state)
    return LaunchRefused(message, refusals=[refusal])


def approve(
    actor: Any,
    run: JobRun,
    reason: str,
    *,
    request: HttpRequest | None = None,
    second_factor: bool | None = None,
) -> None:
    """A second person lets a run that waits for approval go (the policy holds the two-person
    rule: the requester is refused)."""
    _decide_approval(actor, run, reason, True, request=request, second_factor=second_factor)


def reject(
    actor: Any,
    run: JobRun,
    reason: str,
    *,
    request: HttpRequest | None = None,
    second_factor: bool | None = None,
) -> None:
    _decide_approval(actor, run, reason, False, request=request, second_factor=second_factor)


def _decide_approval(
    actor: Any,
    run: JobRun,
    reason: str,
    approve: bool,
    *,
    request: HttpRequest | None,
    second_factor: bool | None,
) -> None:
    attempt = "approve" if approve else "reject"
    _check(
        actor, Action.APPROVE, run, request=request, second_factor=second_factor, attempt=attempt
    )
    if approve:
        queue.check_available()
    now = timezone.now()
    with transaction.atomic():
        moved = transition(
            run,
            RunState.QUEUED if approve else RunState.REJECTED,
            expect=[RunState.AWAITING_APPROVAL],
            actor=actor,
            request=request,
            audit_action="run.approved" if approve else "run.rejected",
            details={"reason": reason.strip(), "requested_by": str(run.requested_by or "")},
            approved_by=actor,
            decision_reason=reason.strip(),
            queued_at=now if approve else None,
            finished_at=None if approve else now,
        )
        if moved and approve:
            transaction.on_commit(lambda: queue.enqueue(run.pk, run.timeout))
    if not moved:
        run.refresh_from_db(fields=["state"])
        raise _refuse(
            "not_awaiting",
            "This run is no longer waiting for approval.",
            run,
            actor=actor,
            request=request,
            attempt=attempt,
        )


def cancel(
    actor: Any,
    run: JobRun,
    *,
    request: HttpRequest | None = None,
    second_factor: bool | None = None,
) -> str:
    """Cancel a queued (or waiting) run at once, or ask the worker to kill a running one.

    The policy decides who may: one's own run with the operator's right, anyone's with the zone
    admin's (`Action.CANCEL_RUN`)."""
    _check(
        actor,
        Action.CANCEL_RUN,
        run,
        request=request,
        second_factor=second_factor,
        attempt="cancel",
    )
    with hostqueue.host_locked(run.host_id):  # the host first, as every change to its line
        if transition(
            run,
            RunState.CANCELLED,
            expect=[RunState.QUEUED, RunState.WAITING, RunState.AWAITING_APPROVAL],
            actor=actor,
            request=request,
            finished_at=timezone.now(),
            cancel_requested_by=actor,
            status_note="",
        ):
            if run.changes_host:
                hostqueue.move_on(run.host_id)
            return "cancelled"
        # A running run is stopped by its worker, which sees the request and moves it to
        # cancelled; here only the request is written (no state change).
        asked = JobRun.objects.filter(pk=run.pk, state=RunState.RUNNING).update(
            cancel_requested_by=actor
        )
        if asked:
            record(
                "run.cancel_requested",
                request=request,
                actor=actor,
                target=run,
                zone=run.host.zone.name,
                details={"state_before": RunState.RUNNING},
            )
            return "stopping"
    run.refresh_from_db(fields=["state"])
    raise _refuse(
        "finished",
        "This run has already finished.",
        run,
        actor=actor,
        request=request,
        attempt="cancel",
    )
