"""Retention: archive the oldest events, then prune them, without breaking the chain.

`plan()` picks the events older than N days (from where the chain starts now up to the newest
of them). `archive_and_prune()` then, in order:

1. refuses if the chain is broken (pruning would destroy the evidence) or the copy off the box
   is behind (every pruned event must already be there);
2. writes the events to a gzipped JSON Lines file, one event per line with every hashed field
   and its hash, and checks that file on its own (`verify_archive`: each hash recomputed, each
   link, no gap) before anything is removed;
3. in one transaction: records `audit.pruned` (the archive's SHA-256, the range, the last
   pruned event's hash), moves the chain head's `pruned_through` mark, and deletes the events up
   to it (the database's delete trigger refuses any event above the mark).

The remaining chain still verifies: `chain.verify_chain` starts after the last `audit.pruned`
event's `through`, linked to the hash it records. The archive verifies on its own, and its first
event links to the previous archive's last (or to the genesis hash).
"""

import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from . import sink
from .chain import canonical_text, chain_start, verify_chain
from .log import record
from .models import HASHED_FIELDS, AuditArchive, AuditEvent, ChainHead

CHUNK = 5000
MAX_DAYS = 36500


class RetentionRefused(Exception):
    """Said in words to the person who asked; nothing was removed."""


def archive_dir() -> Path:
    return Path(settings.REMORA_AUDIT_ARCHIVE_DIR)


def plan(older_than_days: int, now=None) -> tuple[int, int] | None:
    """(first, through): the events to archive, those written more than N days ago that are
    still in the database; None when there are none."""
    if not 1 <= older_than_days <= MAX_DAYS:
        raise RetentionRefused(f"Keep events for 1 to {MAX_DAYS} days, not {older_than_days}.")
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    start, _ = chain_start()
    through = (
        AuditEvent.objects.filter(sequence__gt=start, occurred_at__lt=cutoff)
        .order_by("-sequence")
        .values_list("sequence", flat=True)
        .first()
    )
    return None if through is None else (start + 1, through)


def _line(row: dict[str, Any]) -> str:
    row["occurred_at"] = row["occurred_at"].isoformat(timespec="microseconds")
    return json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n"


def _events(first: int, through: int) -> Iterator[dict[str, Any]]:
    after = first - 1
    while after < through:
        rows = list(
            AuditEvent.objects.filter(sequence__gt=after, sequence__lte=through)
            .order_by("sequence")
            .values(*HASHED_FIELDS, "hash")[:CHUNK]
        )
        if not rows:
            return
        yield from rows
        after = rows[-1]["sequence"]


def write_archive(first: int, through: int, path: Path) -> str:
    """Write events first..through to `path` (gzipped JSON Lines); returns its SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with gzip.open(partial, "wt", encoding="utf-8") as out:
        for row in _events(first, through):
            out.write(_line(row))
    partial.rename(path)
    return file_sha256(path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        while block := data.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ArchiveReport:
    checked: int
    first: int | None = None
    last: int | None = None
    links_to: str = ""  # the previous_hash of its first event
    last_hash: str = ""
    broken_at: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None and not self.reason


def verify_archive(path: Path) -> ArchiveReport:
    """Check an archive on its own: every event's hash recomputed from its fields, every event
    linked to the one before it, the sequence without gaps."""
    checked, first, last, links_to, previous = 0, None, 0, "", ""

    def broken(at: int | None, reason: str) -> ArchiveReport:
        return ArchiveReport(checked, first, last or None, links_to, previous, at, reason)

    try:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for number, text in enumerate(lines, 1):
                try:
                    row = json.loads(text)
                    values = [row[name] for name in HASHED_FIELDS]
                    stored = row["hash"]
                except (ValueError, KeyError, TypeError):
                    return broken(last + 1, f"line {number} is not an archived event")
                sequence = values[0]
                if first is None:
                    first, links_to = sequence, values[-1]
                elif sequence != last + 1:
                    return broken(last + 1, f"event #{last + 1} is missing from the archive")
                elif values[-1] != previous:
                    return broken(sequence, f"event #{sequence} does not link to the one before")
                if hashlib.sha256(canonical_text(*values)).hexdigest() != stored:
                    return broken(sequence, f"event #{sequence} was altered")
                checked, last, previous = checked + 1, sequence, stored
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        return broken(last + 1, f"the archive cannot be read: {exc}")
    if not checked:
        return broken(None, "the archive holds no event")
    return broken(None, "")


def archive_and_prune(archive: AuditArchive) -> AuditArchive:
    """Archive events archive.first..archive.through, check the file, then prune them."""
    AuditArchive.objects.filter(pk=archive.pk).update(status=AuditArchive.Status.RUNNING)
    try:
        _archive_and_prune(archive)
    except RetentionRefused as refused:
        AuditArchive.objects.filter(pk=archive.pk).update(
            status=AuditArchive.Status.FAILED, reason=str(refused)[:300],
            finished_at=timezone.now(),
        )  # fmt: skip
        record("audit.prune_refused", actor_name="retention", target=archive,
               details={"reason": str(refused), "first": archive.first,
                        "through": archive.through})  # fmt: skip
    archive.refresh_from_db()
    return archive


def _archive_and_prune(archive: AuditArchive) -> None:
    start, start_hash = chain_start()
    if archive.first != start + 1:
        raise RetentionRefused(
            f"The chain now starts at event #{start + 1}, not #{archive.first}: "
            "another prune ran first. Ask again."
        )
    report = verify_chain()
    if not report.ok:
        raise RetentionRefused(
            f"The chain is broken at event #{report.broken_at} ({report.reason}); nothing is "
            "pruned from a broken chain. Verify it and find out why first."
        )
    target = sink.configured()
    sink.flush(target)
    if target.kind != "none" and sink.sent_through() < archive.through:
        raise RetentionRefused("The copy off the box is behind; pruning waits until it has "
                               f"every event up to #{archive.through}.")  # fmt: skip
    name = f"remora-audit-{archive.first:010d}-{archive.through:010d}.jsonl.gz"
    path = archive_dir() / name
    digest = write_archive(archive.first, archive.through, path)
    checked = verify_archive(path)
    last_hash = (
        AuditEvent.objects.filter(sequence=archive.through).values_list("hash", flat=True).first()
    )
    if not checked.ok or (checked.first, checked.last) != (archive.first, archive.through):
        raise RetentionRefused(
            f"The archive written does not check: {checked.reason or 'wrong range'}."
        )
    if checked.links_to != start_hash or checked.last_hash != last_hash:
        raise RetentionRefused("The archive does not link to the chain it was taken from.")
    size = path.stat().st_size
    with transaction.atomic():
        head = ChainHead.objects.select_for_update().get(id=1)
        if head.pruned_through != start:
            raise RetentionRefused("Another prune ran meanwhile. Ask again.")
        event = record(
            "audit.pruned", actor=archive.requested_by, actor_name="" if archive.requested_by else
            "retention", target=archive,
            details={"first": archive.first, "through": archive.through, "last_hash": last_hash,
                     "events": checked.checked, "archive": name, "archive_sha256": digest,
                     "older_than_days": archive.older_than_days},
        )  # fmt: skip
        ChainHead.objects.filter(id=1).update(pruned_through=archive.through)
        table = connection.ops.quote_name(AuditEvent._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE sequence <= %s", [archive.through])  # noqa: S608
        AuditArchive.objects.filter(pk=archive.pk).update(
            status=AuditArchive.Status.DONE, filename=name, sha256=digest, size=size,
            finished_at=timezone.now(), pruned_by_event=event.sequence,
        )  # fmt: skip
