"""The one write path into the audit log (its check is in chain.py).

`record(...)` is called explicitly where a change happens, inside the same transaction, so a
change that rolls back leaves no event. Writers lock the chain head row, which keeps one unbroken
chain however many processes write at once.
"""

import json
import re
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, models, transaction
from django.http import HttpRequest
from django.utils import timezone

from . import sink
from .catalogue import meaning
from .models import AuditEvent, ChainHead

REDACTED = "[redacted]"
_SECRET_KEY = re.compile(r"pass(word)?|secret|token|private|credential|otp|key_material", re.I)


def redact(value: Any) -> Any:
    """Replace the values of secret-looking keys, however deeply nested."""
    if isinstance(value, Mapping):
        return {
            str(k): (REDACTED if _SECRET_KEY.search(str(k)) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def client_address(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def zone_name_of(target: Any) -> str:
    """The name of the zone a target lives in: the target itself when it is a zone (it has a
    sensitivity), its `zone`, or its host's zone; "" for targets outside any zone."""
    if hasattr(target, "sensitivity"):
        return str(target.name)
    for path in ("zone", "host"):
        if not any(f.name == path for f in target._meta.get_fields()):
            continue
        related = getattr(target, path, None)
        if related is None or isinstance(related, str):
            return related or ""
        return zone_name_of(related)
    return ""


def host_name_of(target: Any, details: Mapping[str, Any]) -> str:
    """The host an event is about: the target when it is a host, the target's host (a run, a
    service), else a "host" named in the details."""
    if target is not None:
        if hasattr(target, "ssh_port"):
            return str(target.name)[:63]
        related = getattr(target, "host", None)
        if related is not None and hasattr(related, "ssh_port"):
            return str(related.name)[:63]
    named = details.get("host")
    return named[:63] if isinstance(named, str) else ""


def search_text(target_repr: str, details: Any) -> str:
    """What the review's full-text search indexes: the target and the details' text."""
    return f"{target_repr} {json.dumps(details, ensure_ascii=False)}"[:4000]


def _locked_head() -> ChainHead:
    """Lock the chain head row. A migration creates it; should it be missing (a wiped table),
    it is created first, outside the lock, so racing writers never deadlock on the insert."""
    try:
        return ChainHead.objects.select_for_update().get(id=1)
    except ChainHead.DoesNotExist:
        try:
            with transaction.atomic():
                ChainHead.objects.create(id=1)
        except IntegrityError:
            pass  # another writer created it first
        return ChainHead.objects.select_for_update().get(id=1)


def record(
    action: str,
    *,
    request: HttpRequest | None = None,
    actor: Any = None,
    actor_name: str = "",
    target: models.Model | None = None,
    target_type: str = "",
    target_repr: str = "",
    zone: str = "",
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain and return it.

    The actor is `actor`, else the request's authenticated user, else the system. `actor_name`
    is kept even when the user is later deleted (and names who tried, for failed logins).
    A target that is not a row (a page, an address) is named by `target_type` and
    `target_repr`. The zone, when not given, is read from the target (its `zone`, or its
    host's).
    """
    if meaning(action) is None:
        raise ValueError(
            f"{action!r} is not in the audit catalogue (remora_admin/audit/catalogue.py)"
        )
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            actor = user
    if actor is not None and not actor_name:
        actor_name = actor.get_username()
    if not zone and target is not None:
        zone = zone_name_of(target)
    with transaction.atomic():
        head = _locked_head()
        event = AuditEvent(
            sequence=head.sequence + 1,
            occurred_at=timezone.now(),
            actor=actor,
            actor_name=actor_name[:150] or "system",
            action=action,
            target_type=target._meta.label_lower if target is not None else target_type[:80],
            target_id=str(target.pk) if target is not None else "",
            target_repr=(target_repr or (str(target) if target is not None else ""))[:200],
            zone=zone,
            host=host_name_of(target, details or {}),
            ip=client_address(request),
            user_agent=(request.META.get("HTTP_USER_AGENT", "") if request else "")[:300],
            details=redact(dict(details or {})),
            previous_hash=head.hash,
        )
        event.hash = event.compute_hash()
        event.search = search_text(event.target_repr, event.details)
        event.save()
        ChainHead.objects.filter(id=1).update(sequence=event.sequence, hash=event.hash)
        # Off the box once committed (an event that rolls back never leaves).
        transaction.on_commit(sink.flush_after_commit)
    return event


def _host_of_row(row: Mapping[str, Any]) -> str:
    """The host of a generated event, read as the host filter reads written ones: a host
    target, a run's "... on <host>", or a host named in the details."""
    named = (row.get("details") or {}).get("host")
    if isinstance(named, str):
        return named
    text = str(row.get("target_repr") or "")
    if row.get("target_type") == "hosts.host":
        return text
    return text.rpartition(" on ")[2] if " on " in text else ""


def append_generated(rows: Any) -> int:
    """Append generated events in bulk: for the scale data generator only
    (`manage.py remora_scale_data`, benchmarks and manual review), never for a real change,
    which calls `record()` in the change's own transaction.

    `rows` is an iterable of dicts with occurred_at (aware), actor_name, action, target_type,
    target_id, target_repr, zone, ip, user_agent, details and optionally actor_id. They are
    chained in batches of 5,000, each under the chain head's lock and committed on its own (no
    transaction a million rows long; a `record()` meanwhile waits for one batch, then chains
    after it). Like `record()`, it refuses an action outside the catalogue (ValueError) and
    redacts secret-looking details. The copy off the box catches up at its next flush (the
    ticker). Returns how many events were written.
    """
    from datetime import UTC

    batch_size, written, known = 5000, 0, set()
    pending: list[Any] = []
    rows = iter(rows)
    while True:
        pending.clear()
        for row in rows:
            action = row["action"]
            if action not in known:
                if meaning(action) is None:
                    raise ValueError(
                        f"{action!r} is not in the audit catalogue "
                        "(remora_admin/audit/catalogue.py)"
                    )
                known.add(action)
            if timezone.is_naive(row["occurred_at"]):
                raise ValueError("occurred_at must be an aware datetime")
            pending.append(row)
            if len(pending) == batch_size:
                break
        if not pending:
            return written
        with transaction.atomic():
            head = _locked_head()
            sequence, previous, events = head.sequence, head.hash, []
            for row in pending:
                sequence += 1
                event = AuditEvent(
                    sequence=sequence,
                    occurred_at=row["occurred_at"].astimezone(UTC),
                    actor_id=row.get("actor_id"),
                    actor_name=str(row.get("actor_name") or "")[:150] or "system",
                    action=row["action"],
                    target_type=str(row.get("target_type") or "")[:80],
                    target_id=str(row.get("target_id") or ""),
                    target_repr=str(row.get("target_repr") or "")[:200],
                    zone=str(row.get("zone") or ""),
                    host=str(row.get("host") or _host_of_row(row))[:63],
                    ip=row.get("ip") or None,
                    user_agent=str(row.get("user_agent") or "")[:300],
                    details=redact(dict(row.get("details") or {})),
                    previous_hash=previous,
                )
                event.hash = previous = event.compute_hash()
                event.search = search_text(event.target_repr, event.details)
                events.append(event)
            AuditEvent.objects.bulk_create(events, batch_size=1000)
            ChainHead.objects.filter(id=1).update(sequence=sequence, hash=previous)
        written += len(events)
