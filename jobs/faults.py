"""Nothing is lost silently: runs whose worker died are marked lost and their host lock freed
(the reaper); runs queued in the database but gone from Redis are delivered again (the
reconciler). The claim in `execute_run` makes a second delivery harmless: a run runs once."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError
from rq.job import Job, NoSuchJobError

from remora_admin.audit.log import record

from . import alerts, queue
from .models import HostLock, JobRun, RunState
from .states import transition

log = logging.getLogger(__name__)
RECONCILE_AFTER = timedelta(seconds=10)
LIVE_JOB_STATES = {"queued", "started", "deferred", "scheduled"}


def reap_lost_runs() -> list[int]:
    """Mark running runs without a heartbeat for too long as lost; free their locks."""
    limit = timezone.now() - timedelta(seconds=settings.REMORA_RUN_HEARTBEAT_TIMEOUT)
    lost = []
    stale = JobRun.objects.filter(state=RunState.RUNNING, heartbeat_at__lt=limit)
    for run in stale.select_related("host__zone"):
        with transaction.atomic():
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
                continue
            HostLock.objects.filter(run=run).delete()
        alerts.after_scheduled_run(run)  # a scheduled run lost is a failed one
        lost.append(run.pk)
    # A lock whose run has finished (any way at all) is freed too.
    HostLock.objects.exclude(run__state=RunState.RUNNING).delete()
    return lost


def reconcile_queue() -> list[int]:
    """Deliver again the queued runs that Redis no longer holds."""
    cutoff = timezone.now() - RECONCILE_AFTER
    redelivered = []
    try:
        connection = queue.queue().connection
        # In launch order: a stop-then-start pair on one host must come back in that order.
        queued = JobRun.objects.filter(state=RunState.QUEUED, queued_at__lt=cutoff)
        for run in queued.order_by("queued_at", "pk"):
            try:
                status = Job.fetch(run.rq_job_id, connection=connection).get_status()
            except NoSuchJobError:
                status = None
            if status in LIVE_JOB_STATES:
                continue
            if status is not None:
                Job.fetch(run.rq_job_id, connection=connection).delete()
            if queue.enqueue(run.pk, run.timeout):
                redelivered.append(run.pk)
                record(
                    "run.redelivered",
                    actor_name="reconciler",
                    target=run,
                    details={"previous_job_state": status},
                )
    except (RedisError, OSError) as exc:
        log.warning("Reconciler cannot reach Redis: %s", exc)
    return redelivered
