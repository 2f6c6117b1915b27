import hashlib
import json
from typing import Any

from django.conf import settings
from django.db import models

GENESIS_HASH = "0" * 64
# The fields the hash covers, in the stored row's terms.
HASHED_FIELDS = (
    "sequence",
    "occurred_at",
    "actor_id",
    "actor_name",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "zone",
    "ip",
    "user_agent",
    "details",
    "previous_hash",
)


def canonical(row: dict[str, Any]) -> bytes:
    """The bytes the hash covers: the hashed fields in a fixed order and encoding."""
    payload = dict(row)
    payload["occurred_at"] = row["occurred_at"].isoformat(timespec="microseconds")
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def chain_hash(row: dict[str, Any]) -> str:
    """SHA-256 of the canonical bytes, which include the previous event's hash."""
    return hashlib.sha256(canonical(row)).hexdigest()


class CanonicalJSON(json.JSONEncoder):
    """Details are stored in the canonical form the hash covers (sorted keys, no spaces, UTF-8
    as is), so the database can check an event's hash itself (chain.py) without the details
    being parsed and written again."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.update(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        super().__init__(*args, **kwargs)


class AuditLogIsAppendOnly(Exception):
    """Raised on any attempt to change or remove an audit event."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise AuditLogIsAppendOnly("Audit events cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditLogIsAppendOnly("Audit events cannot be deleted.")


class AuditEvent(models.Model):
    """One thing that happened. Written only by `remora_admin.audit.record`."""

    sequence = models.PositiveBigIntegerField(unique=True)
    occurred_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        # The id stays when the user is deleted: the row may not change (and actor_name keeps
        # the name), and there is no foreign key constraint to break.
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=80, db_index=True)
    target_type = models.CharField(max_length=80, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    zone = models.CharField(max_length=64, blank=True, db_index=True)
    # The host the event is about, when it is about one (for the review's host filter; not part
    # of the hash: it is read from the target and details, which are).
    host = models.CharField(max_length=63, blank=True)
    # The words of the target and details, for the review's full-text search (MariaDB's index
    # cannot cover a JSON column); not part of the hash either.
    search = models.TextField(blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True, encoder=CanonicalJSON)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-sequence"]
        # Each filter of the review page with the paging order: newest first, by sequence.
        indexes = [
            models.Index(fields=["target_type", "target_id"]),
            models.Index(fields=["action", "-sequence"], name="audit_action_seq"),
            models.Index(fields=["zone", "-sequence"], name="audit_zone_seq"),
            models.Index(fields=["actor_name", "-sequence"], name="audit_actor_seq"),
            models.Index(fields=["host", "-sequence"], name="audit_host_seq"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} by {self.actor_name or 'system'}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditLogIsAppendOnly("Audit events cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditLogIsAppendOnly("Audit events cannot be deleted.")

    def canonical(self) -> bytes:
        return canonical({name: getattr(self, name) for name in HASHED_FIELDS})

    def compute_hash(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()


class ChainHead(models.Model):
    """The single row that every writer locks; it holds the last sequence and hash."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    sequence = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)
    # Events up to here were archived and pruned: the database's delete trigger refuses to
    # remove any other (remora_admin/audit/retention.py moves it, with its chained event).
    pruned_through = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"audit chain head at #{self.sequence}"


class SinkCursor(models.Model):
    """How far the off-box copy (the sink) has been written: the last sequence sent there.
    Locked by the process writing to the sink, so each event is sent once, in order."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    sequence = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"audit sink written up to #{self.sequence}"


class ChainVerification(models.Model):
    """One verification of the chain (asked from the browser, or the daily one): the chain's
    own links, then the copy off the box."""

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    checked = models.PositiveBigIntegerField(default=0)
    copy_checked = models.PositiveBigIntegerField(null=True, blank=True)  # None: no file copy
    broken_at = models.PositiveBigIntegerField(null=True, blank=True)  # the first bad event
    reason = models.CharField(max_length=300, blank=True)
    seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"chain verification of {self.requested_at:%Y-%m-%d %H:%M}"

    @property
    def ok(self) -> bool:
        return self.finished_at is not None and self.broken_at is None


class AuditArchive(models.Model):
    """Events older than N days written to a file that verifies on its own, then pruned from
    the database with a chained `audit.pruned` event (remora_admin/audit/retention.py)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Archiving"
        DONE = "done", "Archived and pruned"
        FAILED = "failed", "Failed"

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    older_than_days = models.PositiveIntegerField()
    first = models.PositiveBigIntegerField()  # the first event archived
    through = models.PositiveBigIntegerField()  # the last event archived
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=300, blank=True)
    filename = models.CharField(max_length=120, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    pruned_by_event = models.PositiveBigIntegerField(null=True, blank=True)  # its sequence

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"audit archive of events #{self.first} to #{self.through}"

    @property
    def events(self) -> int:
        return self.through - self.first + 1
