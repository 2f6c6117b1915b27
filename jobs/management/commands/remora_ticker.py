import contextlib
import logging
import signal
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from jobs import audit_checks
from jobs.batches import stalled
from jobs.faults import reap_lost_runs, reconcile_queue
from jobs.queue import QueueUnavailable, enqueue_advance
from jobs.schedules import tick as fire_schedules
from remora_admin.audit import sink

log = logging.getLogger(__name__)
CHECKPOINT_EVERY = 3600.0  # seconds between the audit chain's checkpoints off the box


def safely(what: str, step, otherwise):
    """One step of a tick: an unexpected error is logged and the ticker goes on (a database
    that went away comes back; one bad row must not stop reaping and scheduling for good)."""
    try:
        return step()
    except QueueUnavailable:
        raise
    except Exception:  # noqa: BLE001
        log.exception("Ticker: %s failed; the next tick tries again", what)
        close_old_connections()
        return otherwise


class Command(BaseCommand):
    help = (
        "The periodic tick: reap lost runs, re-queue runs missing from Redis, and ask a "
        "worker to move on growth plans whose step ended (a rejection, a lost run), and fire "
        "the schedules that are due (each time exactly once, across ticker processes); send the "
        "audit log's new events off the box and, hourly, a checkpoint of its head."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--interval", type=float, default=10.0, help="Seconds between ticks.")
        parser.add_argument("--once", action="store_true", help="Tick once and exit.")

    def handle(self, *args, **options) -> None:
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        last_checkpoint = -CHECKPOINT_EVERY  # one at the first tick
        while not stopping:
            lost = safely("reaping lost runs", reap_lost_runs, [])
            redelivered = safely("reconciling the queue", reconcile_queue, [])
            for batch_id in safely("finding stalled plans", stalled, []):
                enqueue_advance(batch_id)
            fired = safely("firing schedules", fire_schedules, {})
            sink.flush_after_commit()  # what a process that died before its flush left
            if time.monotonic() - last_checkpoint >= CHECKPOINT_EVERY:
                sink.checkpoint_safely()
                last_checkpoint = time.monotonic()
                with contextlib.suppress(QueueUnavailable):  # asked again at the next one
                    safely("asking for the daily verification", audit_checks.daily, None)
            if lost or redelivered:
                self.stdout.write(f"Marked lost: {lost}; delivered again: {redelivered}")
            if fired:
                self.stdout.write("Schedules: " + ", ".join(f"{n} {o}" for o, n in fired.items()))
            if options["once"]:
                return
            deadline = time.monotonic() + options["interval"]
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.2)
