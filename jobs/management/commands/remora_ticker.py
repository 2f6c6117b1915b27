import signal
import time

from django.core.management.base import BaseCommand

from jobs.faults import reap_lost_runs, reconcile_queue


class Command(BaseCommand):
    help = "The periodic tick: reap lost runs and re-queue runs missing from Redis."

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
        while not stopping:
            lost, redelivered = reap_lost_runs(), reconcile_queue()
            if lost or redelivered:
                self.stdout.write(f"Marked lost: {lost}; delivered again: {redelivered}")
            if options["once"]:
                return
            deadline = time.monotonic() + options["interval"]
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.2)
