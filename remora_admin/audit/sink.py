"""The audit log's copy off the box: every event as one JSON line with its hash, and now and
then a checkpoint (the chain head: sequence and hash), written where the database's owner cannot
rewrite it (an append-only file on another disk or mount, or a remote syslog).

A database owner could rewrite the whole chain consistently from some event on; the hashes
would still link. The sink's lines and checkpoints were written when the events happened, so
`compare()` catches such a rewrite and names the first rewritten event.

`flush()` sends every committed event not yet sent, in order, under a lock on `SinkCursor`
(once per event however many processes write; after a crash between writing and committing the
cursor, a line can appear twice: each carries its sequence and hash, so a reader keeps one).
`record()` asks for a flush when its transaction commits; the ticker flushes and writes a
checkpoint periodically, and verification writes one too.

REMORA_AUDIT_SINK: `file:/path` (append-only; the console can read it back to compare),
`syslog` (the local /dev/log), `syslog:HOST:PORT` (a remote syslog over UDP), or `none`.
"""

import json
import logging
import logging.handlers
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import AuditEvent, ChainHead, SinkCursor

log = logging.getLogger(__name__)
CHUNK = 2000


@dataclass(frozen=True)
class Sink:
    kind: str  # "file", "syslog" or "none"
    path: Path | None = None
    address: Any = None

    def write(self, lines: list[str]) -> None:
        if self.kind == "file":
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as out:
                out.write("".join(f"{line}\n" for line in lines))
                out.flush()
                os.fsync(out.fileno())
        elif self.kind == "syslog":
            handler = logging.handlers.SysLogHandler(address=self.address)
            try:
                for line in lines:
                    handler.emit(logging.LogRecord("remora.audit", logging.INFO, "", 0, line,
                                                   None, None))  # fmt: skip
            finally:
                handler.close()


def configured() -> Sink:
    value = getattr(settings, "REMORA_AUDIT_SINK", "none") or "none"
    if value == "none":
        return Sink("none")
    if value.startswith("file:"):
        return Sink("file", path=Path(value[5:]))
    if value == "syslog":
        return Sink("syslog", address="/dev/log")
    if value.startswith("syslog:"):
        host, _, port = value[7:].rpartition(":")
        return Sink("syslog", address=(host, int(port)))
    raise ValueError(f"REMORA_AUDIT_SINK: {value!r} is not file:PATH, syslog[:HOST:PORT] or none")


def line(event: AuditEvent) -> str:
    return json.dumps(
        {
            "sequence": event.sequence,
            "hash": event.hash,
            "previous_hash": event.previous_hash,
            "occurred_at": event.occurred_at.isoformat(timespec="microseconds"),
            "actor": event.actor_name,
            "action": event.action,
            "target": f"{event.target_type}:{event.target_id}".strip(":"),
            "zone": event.zone,
            "details": event.details,
        },
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )


def flush(sink: Sink | None = None) -> int:
    """Send every committed event not yet sent; returns how many were sent."""
    sink = sink or configured()
    if sink.kind == "none":
        return 0
    sent = 0
    while True:
        with transaction.atomic():
            cursor = SinkCursor.objects.select_for_update().get(id=1)  # made by a migration
            events = list(
                AuditEvent.objects.filter(sequence__gt=cursor.sequence).order_by("sequence")[:CHUNK]
            )
            if not events:
                return sent
            sink.write([line(e) for e in events])
            SinkCursor.objects.filter(id=1).update(sequence=events[-1].sequence)
            sent += len(events)


def sent_through() -> int:
    """The last sequence written off the box."""
    return SinkCursor.objects.filter(id=1).values_list("sequence", flat=True).first() or 0


def flush_after_commit() -> None:
    """What `record()` calls once its transaction committed: a failing sink never fails the
    change that was recorded (the next flush sends what is missing)."""
    try:
        flush()
    except Exception:  # noqa: BLE001 - the event is safe in the database; said in the log
        log.exception("The audit sink could not be written; the next flush will retry")


def checkpoint(sink: Sink | None = None) -> dict[str, Any] | None:
    """Flush, then write the chain head as a checkpoint line; returns it (None: no sink)."""
    sink = sink or configured()
    if sink.kind == "none":
        return None
    flush(sink)
    head = ChainHead.objects.filter(id=1).first()
    if head is None:
        return None
    mark = {"checkpoint": {"sequence": head.sequence, "hash": head.hash,
                           "at": timezone.now().isoformat(timespec="seconds")}}  # fmt: skip
    sink.write([json.dumps(mark, sort_keys=True)])
    return mark["checkpoint"]


def checkpoint_safely() -> None:
    """A checkpoint that never stops the caller (the ticker): a failure is said in the log."""
    try:
        checkpoint()
    except Exception:  # noqa: BLE001 - the next tick tries again
        log.exception("The audit checkpoint could not be written off the box")


def _read(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with open(path, encoding="utf-8") as lines:
        for text in lines:
            text = text.strip()
            if text:
                try:
                    yield json.loads(text)
                except ValueError:
                    continue  # a torn last line after a crash


@dataclass(frozen=True)
class Comparison:
    checked: int
    first_rewritten: int | None = None
    reason: str = ""


def _held(after: int) -> Iterator[tuple[int, str]]:
    """(sequence, hash) of every event after `after` in the database, in order, in keyset-paged
    chunks."""
    while True:
        rows = list(
            AuditEvent.objects.filter(sequence__gt=after)
            .order_by("sequence")
            .values_list("sequence", "hash")[:20000]
        )
        yield from rows
        if len(rows) < 20000:
            return
        after = rows[-1][0]


def compare(sink: Sink | None = None, after: int = 0) -> Comparison | None:
    """The database's chain against the sink's copy (file sinks only; None otherwise): every
    event sent there must still be in the database with the same hash, and every checkpoint
    must match. Both are walked in sequence order, side by side (memory stays flat). Events up
    to `after` were archived and pruned (where the verified chain starts): not compared."""
    sink = sink or configured()
    if sink.kind != "file" or sink.path is None:
        return None
    held = _held(after)
    current = next(held, None)
    checked, last = 0, 0
    checkpoints: list[dict[str, Any]] = []
    for entry in _read(sink.path):
        if "checkpoint" in entry:
            checkpoints.append(entry["checkpoint"])
            continue
        sequence = int(entry.get("sequence", 0))
        if sequence <= max(last, after):
            continue  # the same line twice (a crash between writing and the cursor), or pruned
        last = sequence
        while current is not None and current[0] < sequence:
            current = next(held, None)
        if current is None or current[0] != sequence:
            return Comparison(checked, sequence, f"event #{sequence} was removed: its copy "
                              "off the box is there")  # fmt: skip
        if current[1] != entry["hash"]:
            return Comparison(checked, sequence, f"event #{sequence} was rewritten: it differs "
                              "from its copy off the box")  # fmt: skip
        checked += 1
    for mark in checkpoints:
        if mark["sequence"] <= after:
            continue
        now = AuditEvent.objects.filter(sequence=mark["sequence"]).values_list("hash", flat=True)
        if now.first() != mark["hash"]:
            return Comparison(checked, mark["sequence"],
                              f"the chain no longer matches the checkpoint at #{mark['sequence']}"
                              f" written {mark['at']}")  # fmt: skip
    return Comparison(checked)
