import importlib

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from jobs.faults import reap_lost_runs, reconcile_queue
from jobs.pool import Pool

# What a worker runs, imported before the pool forks so that its workers share these pages.
PRELOAD = ("jobs.tasks", "jobs.batches", "jobs.worker", "django_rq.workers")


class Command(BaseCommand):
    help = (
        "Start RQ workers for runs (one, or a pool of --concurrency processes under one "
        "supervisor), after reaping lost runs and re-queuing missing ones."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--burst", action="store_true", help="Stop when the queue is empty.")
        parser.add_argument(
            "--concurrency",
            type=int,
            default=None,
            help="How many runs at once: worker processes in the pool (default "
            "REMORA_WORKER_CONCURRENCY; 1 is a lone worker in this process). See jobs/pool.py.",
        )

    def handle(self, *args, **options) -> None:
        concurrency = options["concurrency"] or settings.REMORA_WORKER_CONCURRENCY
        if concurrency < 1:
            raise CommandError("--concurrency must be at least 1.")
        lost, redelivered = reap_lost_runs(), reconcile_queue()
        if lost or redelivered:
            self.stdout.write(f"Marked lost: {lost}; delivered again: {redelivered}")

        # SimpleWorker runs jobs in its own process (no fork per job), so SSH connections stay
        # warm between runs; a job that kills the process is found by the reaper.
        def work() -> None:
            call_command(
                "rqworker",
                "default",
                burst=options["burst"],
                with_scheduler=False,
                worker_class="jobs.worker.RemoraWorker",
                verbosity=options["verbosity"],
            )

        if concurrency == 1:
            work()
            return
        for module in PRELOAD:
            importlib.import_module(module)
        self.stdout.write(f"Starting a pool of {concurrency} workers.")
        self.stdout.flush()
        status = Pool(concurrency, work, burst=options["burst"]).run()
        if status:
            raise SystemExit(status)
