"""Nothing is lost silently: runs whose worker died are marked lost and their host lock freed
(the reaper); runs queued in the database but gone from Redis, or held by a worker that died
before it claimed them, are delivered again (the reconciler). The claim in `execute_run` makes
a second delivery harmless: a run runs once.

Neither ever dies of one bad item: each run is handled on its own, and an unexpected error is
logged with the run's id while the loop goes on (the ticker and a starting worker call both).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import RedisError
from rq.executions import ExecutionRegistry
from rq.job import Job, NoSuchJobError
from rq.worker import Worker

from remora_admin.audit.log import record

from . import alerts, hostqueue, queue
from .models import HostLock, JobRun, RunState
from .states import transition

log = logging.getLogger(__name__)
RECONCILE_AFTER = timedelta(seconds=10)
LIVE_JOB_STATES = {"queued", "started", "deferred", "scheduled"}
# A worker that has not said it is alive for this long is dead (RQ's own bound is minutes).
WORKER_SILENT = timedelta(seconds=45)


def reap_lost_runs() -> list[int]:
    """Mark running runs without a heartbeat for too long as lost; free their locks."""
    limit = timezone.now() - timedelta(seconds=settings.REMORA_RUN_HEARTBEAT_TIMEOUT)
    lost = []
    stale = JobRun.objects.filter(state=RunState.RUNNING, heartbeat_at__lt=limit)
    for run in stale.select_related("host__zone"):
        try:
            if _reap(run, limit):
                lost.append(run.pk)
        except Exception:  # noqa: BLE001 - one bad run never stops the reaper
            log.exception("Reaper: run #%s could not be handled; going on", run.pk)
    # A lock whose run has finished (any way at all) is freed too, and its line moves on; so
    # does a line whose host is free but whose first run still waits.
    waiting = JobRun.objects.filter(state=RunState.WAITING).values_list("host_id", flat=True)
    ended = HostLock.objects.exclude(run__state=RunState.RUNNING).select_related("run")
    for host_id in {lock.host_id for lock in ended} | set(waiting):
        try:
            with hostqueue.host_locked(host_id):
                for lock in (
                    HostLock.objects.filter(host_id=host_id)
                    .exclude(run__state=RunState.RUNNING)
                    .select_related("run")
                ):
                    hostqueue.release(lock.run)
                hostqueue.move_on(host_id)
        except Exception:  # noqa: BLE001
            log.exception("Reaper: the line of host #%s could not move on; next tick", host_id)
    return lost


def _reap(run: JobRun, limit) -> bool:
    with hostqueue.host_locked(run.host_id):
        moved = transition(
            run,
            RunState.LOST,
            expect=[RunState.RUNNING],
            where={"heartbeat_at__lt": limit},
            actor_name="reaper",
            audit_action="run.lost",
            details={"worker": run.worker, "last_heartbeat": str(run.heartbeat_at)},
            finished_at=timezone.now(),
            error="lost: the worker stopped reporting (it died or lost its database)",
            status_note="",
        )
        if not moved:
            return False
        hostqueue.release(run)
    alerts.after_scheduled_run(run)  # a scheduled run lost is a failed one
    return True


def reconcile_queue() -> list[int]:
    """Deliver again the queued runs that Redis no longer holds, or whose RQ job a dead
    worker took (it died between taking the job and claiming the run)."""
    cutoff = timezone.now() - RECONCILE_AFTER
    redelivered = []
    try:
        connection = queue.queue().connection
        # In launch order: a stop-then-start pair on one host must come back in that order.
        queued = JobRun.objects.filter(state=RunState.QUEUED, queued_at__lt=cutoff).filter(
            Q(redelivered_at__isnull=True) | Q(redelivered_at__lt=cutoff)
        )
        for run in queued.order_by("queued_at", "pk"):
            try:
                if _redeliver(run, connection):
                    redelivered.append(run.pk)
            except (RedisError, OSError):
                raise
            except Exception:  # noqa: BLE001 - one bad run never stops the reconciler
                log.exception("Reconciler: run #%s could not be handled; going on", run.pk)
    except (RedisError, OSError) as exc:
        log.warning("Reconciler cannot reach Redis: %s", exc)
    return redelivered


def _job_of(run: JobRun, connection) -> Job | None:
    try:
        return Job.fetch(run.rq_job_id, connection=connection)
    except NoSuchJobError:
        return None


def _worker_alive(job: Job, connection) -> bool:
    """Whether the worker that took `job` still says it is alive."""
    name = job.worker_name
    if not name:
        return False
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=connection)
    if worker is None or worker.last_heartbeat is None:
        return False
    return timezone.now() - worker.last_heartbeat < WORKER_SILENT


def _stranded(job: Job, status: str, connection) -> bool:
    """A job RQ calls live that nothing will ever run: taken by a worker that died, or said
    queued while its queue no longer lists it (the queue was flushed)."""
    if status == "started":
        return not _worker_alive(job, connection)
    if status == "queued":
        return connection.lpos(queue.queue().key, job.id) is None
    return False


def _delete_job(job: Job, connection) -> None:
    """Delete an RQ job, also in the window (about a minute after RQ's clean-up marked it
    failed) in which its execution record has expired and RQ's own delete raises."""
    try:
        job.delete()
    except ValueError:
        connection.delete(ExecutionRegistry(job.id, connection).key)
        job.delete()


def _redeliver(run: JobRun, connection) -> bool:
    job = _job_of(run, connection)
    status = job.get_status() if job is not None else None
    if status in LIVE_JOB_STATES and not (
        status == "started" and not _worker_alive(job, connection)
    ):
        return False
    with transaction.atomic():
        # The claim: only the reconciler whose conditional update matches re-queues the run.
        claimed = JobRun.objects.filter(
            pk=run.pk, state=RunState.QUEUED, redelivered_at=run.redelivered_at
        ).update(redelivered_at=timezone.now())
        if not claimed:
            return False
        if job is not None:
            _delete_job(job, connection)
        if not queue.enqueue(run.pk, run.timeout):
            raise RedisError("the queue refused the run")  # the claim rolls back
        record("run.redelivered", actor_name="reconciler", target=run,
               details={"previous_job_state": status or "gone",
                        "worker": job.worker_name if job is not None else None})  # fmt: skip
    return True
