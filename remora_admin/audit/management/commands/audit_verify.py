import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from remora_admin.audit import retention, sink
from remora_admin.audit.chain import PRUNED, verify_chain
from remora_admin.audit.models import AuditEvent


class Command(BaseCommand):
    help = (
        "Walk the audit log's hash chain and name the first broken event; then compare it with "
        "the copy off the box (REMORA_AUDIT_SINK, when it is a file) and write a checkpoint."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--archive", metavar="FILE", help="check an archive of pruned events on its own "
            "instead, and name the prune event in the chain that records its SHA-256",
        )  # fmt: skip

    def handle(self, *args, **options) -> None:
        if options["archive"]:
            self.check_archive(Path(options["archive"]))
            return
        started = time.monotonic()
        report = verify_chain()
        elapsed = time.monotonic() - started
        if not report.ok:
            raise CommandError(
                f"Audit chain BROKEN at event #{report.broken_at}: {report.reason}. "
                f"{report.checked} events before it are intact."
            )
        sink.flush()
        against = sink.compare(after=report.starts_at - 1)
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

    def check_archive(self, path: Path) -> None:
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        report = retention.verify_archive(path)
        if not report.ok:
            raise CommandError(f"Archive BROKEN at event #{report.broken_at}: {report.reason}. "
                               f"{report.checked} events before it are intact.")  # fmt: skip
        digest = retention.file_sha256(path)
        recorded = (
            AuditEvent.objects.filter(action=PRUNED, details__archive_sha256=digest)
            .values_list("sequence", flat=True)
            .first()
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Archive intact: events #{report.first} to #{report.last} "
                f"({report.checked}) link and hash; the first links to {report.links_to[:16]}…; "
                f"SHA-256 {digest}"
                + (f", recorded by prune event #{recorded}." if recorded else
                   ", recorded by no prune event in this database.")
            )
        )  # fmt: skip
