"""Streaming a run's output into the database in small batches, under a size cap."""

import time

from django.conf import settings
from django.utils import timezone

from .models import JobRun, OutputChunk

FLUSH_SECONDS = 0.25
FLUSH_BYTES = 16 * 1024
HEARTBEAT_SECONDS = 2  # a quiet run tells the reaper it is alive this often (well within
# the shortest REMORA_RUN_HEARTBEAT_TIMEOUT allowed, 5 s)


class OutputWriter:
    """Collects output as it arrives: the first bytes at once, then at least every 250 ms or
    16 KiB.

    Stored bytes are capped at REMORA_RUN_OUTPUT_LIMIT: the first that many bytes are kept
    exactly; after them a notice says how many more bytes were discarded. Secret values are
    replaced before anything is written, also when one arrives split across two reads: the
    last bytes of each stream (one fewer than the longest secret) wait for the next read.
    """

    def __init__(self, run: JobRun, secrets: list[str] | None = None):
        self.run = run
        self.limit = settings.REMORA_RUN_OUTPUT_LIMIT
        self.stored = run.output_bytes
        self.discarded = 0
        self.pending: list[tuple[str, bytes]] = []
        self.pending_size = 0
        self.last_flush = self.last_beat = time.monotonic()
        self.flushed_output = False
        self.secrets = [s.encode() for s in (secrets or []) if s]
        self.hold = max((len(s) for s in self.secrets), default=1) - 1
        self.held: dict[str, bytes] = {}

    def write(self, stream: str, data: bytes) -> None:
        data = self.held.pop(stream, b"") + data
        for secret in self.secrets:
            data = data.replace(secret, b"[secret]")
        if self.hold:
            data, self.held[stream] = data[: -self.hold], data[-self.hold :]
        self._add(stream, data)

    def _add(self, stream: str, data: bytes) -> None:
        if not data:
            return
        if self.pending and self.pending[-1][0] == stream:
            self.pending[-1] = (stream, self.pending[-1][1] + data)
        else:
            self.pending.append((stream, data))
        self.pending_size += len(data)
        # The first output is written at once (people watch for it); then in batches.
        if self.pending_size >= FLUSH_BYTES or not self.flushed_output:
            self.flush()

    def tick(self) -> None:
        """Flush when the batch is old enough; also keeps the heartbeat fresh."""
        if time.monotonic() - self.last_flush >= FLUSH_SECONDS:
            self.flush()

    def flush(self, final: bool = False) -> None:
        if final:
            for stream, rest in self.held.items():
                self._add(stream, rest)
            self.held = {}
        chunks = []
        for stream, data in self.pending:
            room = max(self.limit - self.stored, 0)
            keep, drop = data[:room], data[room:]
            if keep:
                chunks.append(
                    OutputChunk(run=self.run, offset=self.stored, stream=stream, data=keep)
                )
                self.stored += len(keep)
            self.discarded += len(drop)
        if final and self.discarded:
            notice = (
                f"\n[output truncated: the first {self.limit} bytes are kept; "
                f"{self.discarded} more bytes were discarded]\n"
            ).encode()
            chunks.append(OutputChunk(run=self.run, offset=self.stored, stream="note", data=notice))
        self.pending, self.pending_size = [], 0
        now = time.monotonic()
        self.last_flush = now
        if not chunks and not final and now - self.last_beat < HEARTBEAT_SECONDS:
            return
        self.last_beat = now
        if chunks:
            OutputChunk.objects.bulk_create(chunks)
            self.flushed_output = True
        JobRun.objects.filter(pk=self.run.pk).update(
            output_bytes=self.stored,
            discarded_bytes=self.discarded,
            heartbeat_at=timezone.now(),
        )
