import time

from django.core.management.base import BaseCommand, CommandError

from remora_admin.audit import sink
from remora_admin.audit.log import verify_chain


class Command(BaseCommand):
    help = (
        "Walk the audit log's hash chain and name the first broken event; then compare it with "
        "the copy off the box (REMORA_AUDIT_SINK, when it is a file) and write a checkpoint."
    )

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        report = verify_chain()
        elapsed = time.monotonic() - started
        if not report.ok:
            raise CommandError(
                f"Audit chain BROKEN at event #{report.broken_at}: {report.reason}. "
                f"{report.checked} events before it are intact."
            )
        sink.flush()
        against = sink.compare()
        if against is not None and against.first_rewritten is not None:
            raise CommandError(
                f"Audit chain REWRITTEN from event #{against.first_rewritten}: {against.reason}. "
                "The chain links, but not to what was written off the box at the time."
            )
        mark = sink.checkpoint()
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit chain intact: {report.checked} events verified in {elapsed:.2f}s"
                + (f"; {against.checked} match their copy off the box" if against else "")
                + (f"; checkpoint written at #{mark['sequence']}." if mark else ".")
            )
        )
