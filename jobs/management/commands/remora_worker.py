from django.core.management import call_command
from django.core.management.base import BaseCommand

from jobs.faults import reap_lost_runs, reconcile_queue


class Command(BaseCommand):
    help = "Start an RQ worker for runs, after reaping lost runs and re-queuing missing ones."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--burst", action="store_true", help="Stop when the queue is empty.")

    def handle(self, *args, **options) -> None:
        lost, redelivered = reap_lost_runs(), reconcile_queue()
        if lost or redelivered:
            self.stdout.write(f"Marked lost: {lost}; delivered again: {redelivered}")
        # SimpleWorker runs jobs in this process (no fork per job), so SSH connections stay
        # warm between runs; a job that kills the process is found by the reaper.
        call_command(
            "rqworker",
            "default",
            burst=options["burst"],
            with_scheduler=False,
            worker_class="jobs.worker.RemoraWorker",
        )
