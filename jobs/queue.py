"""Redis is only the delivery channel: a run is a row first, then a message on the queue."""

import logging

import django_rq
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

QUEUE = "default"
# By name, not by import: the web side never imports the worker's code (and no import cycle).
EXECUTE_RUN = "jobs.tasks.execute_run"
ADVANCE_PLAN = "jobs.batches.advance"


class QueueUnavailable(Exception):
    pass


def queue():
    return django_rq.get_queue(QUEUE)


def check_available() -> None:
    try:
        queue().connection.ping()
    except (RedisError, OSError) as exc:
        raise QueueUnavailable(f"The job queue (Redis) does not answer: {exc}") from None


def enqueue(run_id: int, timeout: int) -> bool:
    """Put the run on the queue (RQ job id = "run-<id>"). False when Redis refused: the
    reconciler will deliver it later from its row."""
    try:
        queue().enqueue(
            EXECUTE_RUN,
            run_id,
            job_id=f"run-{run_id}",
            job_timeout=timeout + 300,
            result_ttl=3600,
            failure_ttl=86400,
        )
        return True
    except (RedisError, OSError) as exc:
        log.warning("Could not enqueue run %s (%s); the reconciler will retry.", run_id, exc)
        return False


def enqueue_advance(batch_id: int) -> bool:
    """Ask a worker to move a growth plan on (its next step, or its end). Asking twice is
    harmless: one worker at a time advances a plan. False when Redis refused: the ticker asks
    again."""
    try:
        queue().enqueue(ADVANCE_PLAN, batch_id, job_timeout=3600, result_ttl=600, failure_ttl=86400)
        return True
    except (RedisError, OSError) as exc:
        log.warning("Could not ask to advance plan %s (%s); the ticker will.", batch_id, exc)
        return False
