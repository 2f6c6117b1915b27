"""What became of a lost run, asked of its host.

A worker that dies or freezes mid-run leaves the command running on the host (sshd does not end
a session without a terminal when the connection drops). The reaper marks the run lost; the
host-side wrapper (jobs/ssh.remote_command) still holds the host's lock for as long as the
command lives, and writes its exit status when it ends. So the host can say, later, what
happened: the next run that ends on that host, or a person's "Check what happened", reads that
record and resolves the lost run (succeeded or failed after the worker was lost, still running,
or ended without a record). A command still running is killed only when a person decides so.
The run stays "lost" (a finished state never moves); its resolution says the rest.
"""

import logging

from django.db import transaction
from django.utils import timezone

from hosts.credentials import CredentialError
from remora_admin.audit.log import record

from . import queue, ssh
from .models import JobRun, Resolution, RunState
from .targets import target_for

log = logging.getLogger(__name__)
CHECK = "jobs.resolve.check_job"
KILL = "jobs.resolve.kill_job"
OPEN = ("", Resolution.RUNNING)  # what a later contact may still settle


def _as_root(run: JobRun) -> bool:
    from .recipes import get

    recipe = get(run.recipe)
    return bool(recipe and recipe.as_root)


def _ask(run: JobRun, kill: bool = False) -> ssh.RunRecord:

    target = target_for(run.host, run.credential or run.host.credential)
    client, _ = ssh.borrow(target)
    try:
        if kill:
            ssh.kill_run(client, run.host_token, _as_root(run))
        found = ssh.run_record(client, run.host_token, _as_root(run))
    except BaseException:
        client.close()
        raise
    ssh.give_back(target, client)
    return found


def check(run: JobRun, *, killed: bool = False, actor_name: str = "resolver") -> str:
    """Ask the host about a lost run and record what it says; returns the resolution."""
    found = _ask(run, kill=killed)
    if found.alive:
        resolution = Resolution.RUNNING
    elif found.exit_code == 0:
        resolution = Resolution.SUCCEEDED
    elif killed:  # (the wrapper records the kill's own status: 143 or 137)
        resolution = Resolution.KILLED
    elif found.exit_code is not None:
        resolution = Resolution.FAILED
    else:
        resolution = Resolution.UNKNOWN
    with transaction.atomic():
        changed = JobRun.objects.filter(
            pk=run.pk, state=RunState.LOST, resolution__in=OPEN
        ).exclude(resolution=resolution)
        if changed.update(resolution=resolution, resolved_at=timezone.now(),
                          exit_code=found.exit_code):  # fmt: skip
            record("run.resolved", actor_name=actor_name, target=run, zone=run.host.zone.name,
                   details={"resolution": str(resolution), "exit_code": found.exit_code,
                            "still_running": found.alive})  # fmt: skip
    return str(resolution)


def pending(host_id: int) -> None:
    """After a run ended on a host: settle what can be settled of its lost runs (best effort:
    a failure here never touches the run that just ended)."""
    lost = JobRun.objects.filter(host_id=host_id, state=RunState.LOST, resolution__in=OPEN)
    for run in lost.select_related("host__zone", "credential", "host__credential")[:5]:
        try:
            check(run)
        except (ssh.SSHFailure, CredentialError, OSError) as exc:
            log.info("Run #%s: its host could not say what happened (%s)", run.pk, exc)
        except Exception:  # noqa: BLE001
            log.exception("Run #%s: resolving it failed", run.pk)


def ask(run: JobRun, *, kill: bool, actor, request=None) -> None:
    """A person asks to check what happened to a lost run, or to kill what still runs of it
    on the host (the view asked the policy); a worker does it."""
    queue.check_available()
    with transaction.atomic():
        record("run.kill_on_host_requested" if kill else "run.check_requested", request=request,
               actor=actor, target=run, zone=run.host.zone.name)  # fmt: skip
        job, args = (KILL, (run.pk, actor.get_username())) if kill else (CHECK, (run.pk,))
        transaction.on_commit(lambda: queue.queue().enqueue(job, *args, job_timeout=120))


def _lost(run_id: int) -> JobRun | None:
    return (
        JobRun.objects.select_related("host__zone", "credential", "host__credential")
        .filter(pk=run_id, state=RunState.LOST)
        .first()
    )


def check_job(run_id: int) -> str:
    run = _lost(run_id)
    return check(run) if run else "not lost"


def kill_job(run_id: int, username: str) -> str:
    run = _lost(run_id)
    return check(run, killed=True, actor_name=username) if run else "not lost"
