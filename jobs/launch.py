"""Launching, approving, rejecting and cancelling runs: checked, audited, then delivered."""

import json
import uuid
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from hosts.credentials import encrypt
from remora_admin.access.guards import require
from remora_admin.access.policy import Action, can
from remora_admin.audit.log import record

from . import queue
from .models import JobRun, RunState
from .recipes import Category, Recipe


class LaunchRefused(Exception):
    pass


def needs_approval(recipe: Recipe, host: Any) -> bool:
    return recipe.category == Category.PROVISION and host.zone.requires_approval


def launch(
    request: HttpRequest, recipe: Recipe, hosts: list[Any], params: dict[str, Any], *, dry_run=False
) -> list[JobRun]:
    """Create one run per host (a batch) with its audit event; queue them once committed."""
    for host in hosts:
        require(request, recipe.needs, host)
        if not host.active:
            raise LaunchRefused(
                f"{host.name} is not active (planned or retired); nothing runs there."
            )
        if host.credential_id is None:
            raise LaunchRefused(f"{host.name} has no SSH credential; a zone admin assigns one.")
        if host.credential.zone_id != host.zone_id:
            raise LaunchRefused(f"{host.name}'s credential belongs to another zone.")
        if not host.host_key:
            raise LaunchRefused(
                f"{host.name}'s host key is not trusted yet; scan it, then a zone admin trusts it."
            )
    queue.check_available()
    public = {k: v for k, v in params.items() if k not in recipe.secret_fields}
    secrets = {k: params[k] for k in recipe.secret_fields if params.get(k)}
    script = recipe.render(params)
    batch = uuid.uuid4()
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
                requested_by=request.user,
                state=RunState.AWAITING_APPROVAL if waiting else RunState.QUEUED,
                queued_at=None if waiting else timezone.now(),
            )
            record(
                "run.requested",
                request=request,
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
                },
            )
            if not waiting:
                transaction.on_commit(lambda r=run: queue.enqueue(r.pk, r.timeout))
            runs.append(run)
    return runs


def encrypt_secrets(secrets: dict[str, str]) -> bytes:
    return encrypt(json.dumps(secrets)) if secrets else b""


def approve(request: HttpRequest, run: JobRun, reason: str) -> None:
    _decide_approval(request, run, reason, approve=True)


def reject(request: HttpRequest, run: JobRun, reason: str) -> None:
    _decide_approval(request, run, reason, approve=False)


def _decide_approval(request: HttpRequest, run: JobRun, reason: str, *, approve: bool) -> None:
    require(request, Action.APPROVE, run)
    if run.requested_by_id == request.user.pk:
        raise LaunchRefused("A second person must approve: you cannot decide on your own run.")
    if approve:
        queue.check_available()
    new_state = RunState.QUEUED if approve else RunState.REJECTED
    with transaction.atomic():
        changed = JobRun.objects.filter(pk=run.pk, state=RunState.AWAITING_APPROVAL).update(
            state=new_state,
            approved_by=request.user,
            decision_reason=reason.strip(),
            queued_at=timezone.now() if approve else None,
            finished_at=None if approve else timezone.now(),
        )
        if not changed:
            raise LaunchRefused("This run is no longer waiting for approval.")
        record(
            "run.approved" if approve else "run.rejected",
            request=request,
            target=run,
            zone=run.host.zone.name,
            details={"reason": reason.strip(), "requested_by": str(run.requested_by or "")},
        )
        if approve:
            transaction.on_commit(lambda: queue.enqueue(run.pk, run.timeout))


def cancel(request: HttpRequest, run: JobRun) -> str:
    """Cancel a queued run at once, or ask the worker to kill a running one."""
    own = run.requested_by_id == request.user.pk and can(request.user, Action.CANCEL_OWN_RUN, run)
    if not own:
        require(request, Action.CANCEL_ANY_RUN, run)
    now = timezone.now()
    with transaction.atomic():
        stopped = JobRun.objects.filter(
            pk=run.pk, state__in=[RunState.QUEUED, RunState.AWAITING_APPROVAL]
        ).update(state=RunState.CANCELLED, finished_at=now, cancel_requested_by=request.user)
        if not stopped:
            asked = JobRun.objects.filter(pk=run.pk, state=RunState.RUNNING).update(
                cancel_requested_by=request.user
            )
            if not asked:
                raise LaunchRefused("This run has already finished.")
        record(
            "run.cancel_requested",
            request=request,
            target=run,
            zone=run.host.zone.name,
            details={"state_before": run.state},
        )
    return "cancelled" if stopped else "stopping"
