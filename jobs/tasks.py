"""The job runner: one function owns a run's whole life on the worker."""

import json
import logging
import os
import socket
import time

from django.db import close_old_connections, connection, transaction
from django.utils import timezone
from rq.timeouts import JobTimeoutException

from hosts.credentials import CredentialError, decrypt
from remora_admin.access.policy import decide
from remora_admin.audit.log import record

from . import alerts, health, hostqueue, queue, resolve, ssh
from .hostkeys import flag_host_key
from .models import JobRun, PlanStep, RunState
from .output import OutputWriter
from .recipes import get as get_recipe
from .recipes import secret_env
from .states import transition
from .targets import target_for

log = logging.getLogger(__name__)
NOT_QUEUED = "not queued (already run, cancelled or unknown)"
# What stops a worker in the middle of a run: a cold shutdown, RQ's job timeout.
STOPPED = (SystemExit, KeyboardInterrupt, JobTimeoutException)
WAITING = "waiting in line for its host"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _finish(run: JobRun, state: str, *, exit_code=None, error: str = "") -> None:
    # Only a running run is finished here: one the reaper already marked lost stays lost (its
    # host lock may already be another run's). A host-changing run frees its host and queues
    # the next in line, with the host's row locked first (jobs/hostqueue.py).
    guard = hostqueue.host_locked(run.host_id) if run.changes_host else transaction.atomic()
    with guard:
        finished = transition(
            run,
            state,
            expect=[RunState.RUNNING],
            actor_name="worker",
            details={"exit_code": exit_code, "error": error, "output_bytes": run.output_bytes},
            exit_code=exit_code,
            error=error[:300],
            finished_at=timezone.now(),
            status_note="",
        )
        if finished and run.changes_host:
            hostqueue.release(run)


def _cancel_requested(run_id: int) -> bool:
    return JobRun.objects.filter(pk=run_id, cancel_requested_by__isnull=False).exists()


def ask_status(recipe, host, script: str, timeout: int = 120) -> tuple[int | None, str]:
    """Run a status companion on `host` (read-only: no lock, no run row): its exit status
    (0 in place, 3 missing, None when it could not run) and its output, secrets never in it."""
    out = bytearray()
    try:
        target = target_for(host, host.credential)
        client, _ = ssh.borrow(target)
    except (CredentialError, ssh.SSHFailure) as failure:
        if isinstance(failure, ssh.SSHFailure) and failure.kind == "host_key_mismatch":
            flag_host_key(host, failure.seen_key, None)
        return None, str(failure)
    try:
        outcome = ssh.run_script(
            client,
            script,
            timeout=timeout,
            on_output=lambda stream, data: out.extend(data),
            should_cancel=lambda: False,
            as_root=recipe.as_root,
        )
    except ssh.SSHFailure as failure:
        client.close()
        return None, str(failure)
    ssh.give_back(target, client)
    text = out.decode(errors="replace")
    if outcome.timed_out:
        return None, f"{text}\nthe status check ran past {timeout} s"
    return outcome.exit_code, text


def execute_run(run_id: int) -> str:
    """Run one JobRun exactly once: claim it, re-check, lock, connect, stream, record. A run
    that is a step of a growth plan then moves its plan on (in a job of its own)."""
    outcome = _execute_run(run_id)
    if outcome in (NOT_QUEUED, WAITING):  # delivered twice, or not run yet: nothing to take in
        return outcome
    for batch_id in PlanStep.objects.filter(run_id=run_id).values_list("batch_id", flat=True):
        queue.enqueue_advance(batch_id)
    run = JobRun.objects.select_related("host").filter(pk=run_id).first()
    if run is not None:
        health.record_result(run)
        alerts.after_scheduled_run(run)
        resolve.pending(run.host_id)  # this host can now say what became of its lost runs
    return outcome


def _execute_run(run_id: int) -> str:
    if not connection.in_atomic_block:
        # The worker lives long: drop database connections that timed out, like a request does.
        close_old_connections()
    run = (
        JobRun.objects.select_related("host__zone", "credential", "requested_by")
        .filter(pk=run_id)
        .first()
    )
    if run is None:
        return NOT_QUEUED
    now = timezone.now()
    start = {"actor_name": "worker", "audit_action": "run.started",
             "details": {"worker": worker_name()}, "started_at": now, "heartbeat_at": now,
             "worker": worker_name(), "status_note": ""}  # fmt: skip
    if run.changes_host:  # the host's lock with the claim, or a place in line (no waiting here)
        claimed = hostqueue.claim(run, **start)
        if claimed == "waiting":
            return WAITING
    else:
        claimed = "running" if transition(run, RunState.RUNNING, expect=[RunState.QUEUED],
                                          **start) else "gone"  # fmt: skip
    if claimed != "running":
        return NOT_QUEUED
    recipe = get_recipe(run.recipe)
    if recipe is None:
        _finish(run, RunState.FAILED, error=f"unknown recipe {run.recipe}")
        return "failed"
    # The policy again: a grant revoked since the launch stops the run here.
    decision = decide(run.requested_by, recipe.needs, run.host, second_factor=True)
    if not decision.allowed:
        record(
            "run.refused_by_policy",
            actor_name="worker",
            target=run,
            zone=run.host.zone.name,
            details={"reason": decision.message},
        )
        _finish(run, RunState.FAILED, error=f"no longer allowed: {decision.message}")
        return "failed"
    try:
        secrets = json.loads(decrypt(run.secret_params)) if run.secret_params else {}
        target = target_for(run.host, run.credential)
    except CredentialError as exc:
        _finish(run, RunState.FAILED, error=str(exc))
        return "failed"
    host = run.host
    writer = OutputWriter(run, secrets=list(secrets.values()))
    prelude = "".join(f"export {secret_env(k)}={ssh.quote(v)}\n" for k, v in secrets.items())
    last_check = 0.0

    def should_cancel() -> bool:
        nonlocal last_check
        writer.tick()
        if time.monotonic() - last_check < 0.25:
            return False
        last_check = time.monotonic()
        return _cancel_requested(run.pk)

    def note(text: str) -> None:
        JobRun.objects.filter(pk=run.pk).update(status_note=text)

    client = None
    try:
        for attempt in (1, 2):
            client, warm = ssh.borrow(target, on_connect=note)
            try:
                outcome = ssh.run_script(
                    client,
                    prelude + run.script,
                    timeout=run.timeout,
                    on_output=writer.write,
                    should_cancel=should_cancel,
                    dry_run=run.dry_run,
                    as_root=recipe.as_root,
                    run=run.host_token,
                    lock=host.name if run.changes_host else "",
                )
                break
            except ssh.SSHFailure as failure:
                client.close()
                client = None
                # A pooled connection that died while idle: try once more with a new one.
                if not (failure.kind == "stale" and warm and attempt == 1):
                    raise
    except ssh.SSHFailure as failure:
        if failure.kind == "host_key_mismatch":
            flag_host_key(host, failure.seen_key, run)
        writer.flush(final=True)
        _finish(run, RunState.FAILED, error=str(failure))
        return "failed"
    except STOPPED:
        # A cold shutdown (a second Ctrl-C or SIGTERM) or RQ's job timeout, in the middle of the
        # run: the command on the host was killed (ssh.run_script); say so, free the host.
        writer.flush(final=True)
        _finish(run, RunState.FAILED, error="worker stopped during the run (shut down, or its "
                "job ran out of time): the command on the host was killed")  # fmt: skip
        raise
    finally:
        if client is not None:
            ssh.give_back(target, client)
    writer.flush(final=True)
    run.output_bytes = writer.stored
    if outcome.cancelled:
        _finish(run, RunState.CANCELLED, exit_code=outcome.exit_code, error="cancelled")
    elif outcome.timed_out:
        _finish(
            run,
            RunState.TIMED_OUT,
            exit_code=outcome.exit_code,
            error=f"timeout: still running after {run.timeout} s, killed",
        )
    elif outcome.exit_code == 0:
        _finish(run, RunState.SUCCEEDED, exit_code=0)
    elif outcome.exit_code == -1:
        _finish(run, RunState.FAILED, exit_code=None, error="killed by a signal on the host")
    else:
        _finish(
            run,
            RunState.FAILED,
            exit_code=outcome.exit_code,
            error=f"exit status {outcome.exit_code}",
        )
    return "done"
