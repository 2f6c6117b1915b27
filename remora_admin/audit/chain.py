"""Verifying the chain, fast: every event's hash recomputed from its fields, every link checked.

At a million events the cost is in reading rows and encoding them, not in SHA-256. So the walk
reads plain tuples through a raw cursor (no model instances, no per-field converters), encodes
the canonical bytes with a fixed key order (`canonical_text`, proven equal to
`models.canonical`), and splits a long chain between processes, each walking one range of
sequences; the links between ranges are checked when their results are put back together.

A chain whose oldest events were archived and pruned starts after the last `audit.pruned`
event's `through`, linked to the hash it records (remora_admin/audit/retention.py).
"""

import hashlib
import json
import multiprocessing
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection, connections, transaction

from .models import GENESIS_HASH, AuditEvent, ChainHead

PRUNED = "audit.pruned"
# Below this many events one process is quicker than starting others.
PARALLEL_FROM = 200_000

_text = json.encoder.encode_basestring  # the encoder json.dumps(ensure_ascii=False) uses
_details = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
).encode


def _value(value: object) -> str:
    if value is None:
        return "null"
    return _text(value) if isinstance(value, str) else str(value)


def occurred_text(raw: object) -> str:
    """A stored `occurred_at` (text from a raw cursor, or a datetime) as `canonical` writes
    it: ISO 8601, microseconds, UTC offset."""
    if isinstance(raw, datetime):
        aware = raw if raw.tzinfo else raw.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat(timespec="microseconds")
    text = str(raw).replace(" ", "T")
    if len(text) == 19:  # SQLite leaves out a zero fraction
        text += ".000000"
    return text + "+00:00"


def canonical_text(
    sequence: int,
    occurred_at: str,
    actor_id: int | None,
    actor_name: str,
    action: str,
    target_type: str,
    target_id: str,
    target_repr: str,
    zone: str,
    ip: str | None,
    user_agent: str,
    details: object,
    previous_hash: str,
) -> bytes:
    """The same bytes as `models.canonical` (the keys in sorted order), built directly."""
    return (
        f'{{"action":{_text(action)},"actor_id":{_value(actor_id)},'
        f'"actor_name":{_text(actor_name)},"details":{_details(details)},"ip":{_value(ip)},'
        f'"occurred_at":{_text(occurred_at)},"previous_hash":{_text(previous_hash)},'
        f'"sequence":{sequence},"target_id":{_text(target_id)},'
        f'"target_repr":{_text(target_repr)},"target_type":{_text(target_type)},'
        f'"user_agent":{_text(user_agent)},"zone":{_text(zone)}}}'
    ).encode()


@dataclass(frozen=True)
class ChainReport:
    checked: int
    broken_at: int | None = None
    reason: str = ""
    starts_at: int = 1  # after a prune, the first event kept

    @property
    def ok(self) -> bool:
        return self.broken_at is None


@dataclass(frozen=True)
class _Range:
    """What one walker found in the sequences (low, high]."""

    checked: int
    first: tuple[int, str] | None  # (sequence, previous_hash) of its first event
    last: tuple[int, str] | None  # (sequence, hash) of its last event checked
    broken_at: int | None = None
    reason: str = ""


RANGE = "WHERE sequence > %s AND sequence <= %s ORDER BY sequence LIMIT %s"


def _select(where: str = RANGE) -> str:
    """Every hashed field of the events `where` selects, as plain tuples."""
    when = "CAST(occurred_at AS CHAR)" if connection.vendor == "mysql" else "occurred_at"
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    # Only our own column and table names are put into the text; the values are parameters.
    columns = (
        f"sequence, {when}, actor_id, actor_name, action, target_type, target_id, target_repr, "
        "zone, ip, user_agent, details, previous_hash, hash"
    )
    return f"SELECT {columns} FROM {table} {where}"  # noqa: S608


def _row_hash(row: tuple) -> str:
    """The hash of a row of `_select`, recomputed from its fields."""
    details = row[11]
    text = canonical_text(
        row[0], occurred_text(row[1]), row[2], row[3], row[4], row[5], row[6], row[7], row[8],
        row[9], row[10], json.loads(details) if isinstance(details, str | bytes) else details,
        row[12],
    )  # fmt: skip
    return hashlib.sha256(text).hexdigest()


def _pages(sql: str, low: int, high: int, chunk: int) -> Iterator[list[tuple]]:
    """The rows of `sql` (a RANGE query, the sequence first) in (low, high], chunk by chunk."""
    after = low
    with connection.cursor() as cursor:
        while True:
            cursor.execute(sql, [after, high, chunk])
            rows = cursor.fetchall()
            yield rows
            if len(rows) < chunk:
                return
            after = rows[-1][0]


def _in_order(
    low: int, previous: str | None, events: Iterator[tuple[int, str, str, Callable[[], bool]]]
) -> _Range:
    """The checks of a range, in order: each event numbered next after low, linked to the one
    before it (the first to `previous`, when given), and not altered. `events` gives
    (sequence, previous_hash, hash, is_altered) in sequence order."""
    expected, checked, first, last = low + 1, 0, None, None
    for sequence, prev, stored, altered in events:
        if first is None:
            first = (sequence, prev)
        if sequence != expected:
            reason = f"event #{expected} is missing (the chain jumps to #{sequence})"
            return _Range(checked, first, last, expected, reason)
        if previous is not None and prev != previous:
            return _Range(checked, first, last, sequence, (
                f"event #{sequence} does not link to event #{sequence - 1} "
                "(rows removed or reordered)"))  # fmt: skip
        if altered():
            reason = f"event #{sequence} was altered after it was written"
            return _Range(checked, first, last, sequence, reason)
        checked += 1
        expected += 1
        previous = stored
        last = (sequence, stored)
    return _Range(checked, first, last)


def _walk_here(low: int, high: int, previous: str | None, chunk: int) -> _Range:
    """Check the events in (low, high]: numbered without gaps from low + 1, each hash
    recomputed, each linked to the one before (the first to `previous`, when given)."""
    events = (
        (row[0], row[12], row[13], lambda row=row: _row_hash(row) != row[13])
        for rows in _pages(_select(), low, high, chunk)
        for row in rows
    )
    return _in_order(low, previous, events)


# On MariaDB/MySQL the database recomputes each hash itself, from the same canonical bytes
# (details are stored canonical: models.CanonicalJSON), and sends back only each event's
# sequence, links and a yes/no. An event it says no to is checked again here, the Python way: a
# "no" can come from an older event stored before details were canonical, or from a character
# the database escapes differently; only the Python check calls an event altered. A "yes" is a
# SHA-256 match with the stored hash: the bytes hashed then are the bytes rebuilt now.
_SERVER_CANONICAL = (
    "CONCAT('{\"action\":', JSON_QUOTE(action), ',\"actor_id\":', IFNULL(actor_id, 'null'), "
    "',\"actor_name\":', JSON_QUOTE(actor_name), ',\"details\":', details, "
    "',\"ip\":', IFNULL(JSON_QUOTE(ip), 'null'), "
    "',\"occurred_at\":\"', DATE_FORMAT(occurred_at, '%%Y-%%m-%%dT%%H:%%i:%%s.%%f+00:00'), "
    '\'","previous_hash":\', JSON_QUOTE(previous_hash), \',"sequence":\', sequence, '
    "',\"target_id\":', JSON_QUOTE(target_id), ',\"target_repr\":', JSON_QUOTE(target_repr), "
    "',\"target_type\":', JSON_QUOTE(target_type), ',\"user_agent\":', JSON_QUOTE(user_agent), "
    "',\"zone\":', JSON_QUOTE(zone), '}')"
)


def _walk(low: int, high: int, previous: str | None, chunk: int) -> _Range:
    if connection.vendor != "mysql":
        return _walk_here(low, high, previous, chunk)
    return _walk_server(low, high, previous, chunk)


def _altered(sequences: list[int]) -> set[int]:
    """Of the events the database could not match, those the Python check finds altered."""
    if not sequences:
        return set()
    where = f"WHERE sequence IN ({', '.join(['%s'] * len(sequences))})"
    with connection.cursor() as cursor:
        cursor.execute(_select(where), sequences)
        return {row[0] for row in cursor.fetchall() if _row_hash(row) != row[13]}


def _walk_server(low: int, high: int, previous: str | None, chunk: int) -> _Range:
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    sql = (
        f"SELECT sequence, CONCAT(previous_hash, hash, IF(SHA2({_SERVER_CANONICAL}, 256) = hash, "  # noqa: S608
        f"'1', '0')) FROM {table} {RANGE}"
    )

    def events() -> Iterator[tuple[int, str, str, Callable[[], bool]]]:
        for rows in _pages(sql, low, high, chunk):
            altered = _altered([seq for seq, packed in rows if packed[128] != "1"])
            for sequence, packed in rows:
                yield (sequence, packed[:64], packed[64:128],
                       lambda sequence=sequence, altered=altered: sequence in altered)  # fmt: skip

    return _in_order(low, previous, events())


def _walk_in_child(args: tuple[int, int, int]) -> _Range:
    low, high, chunk = args
    try:
        return _walk(low, high, None, chunk)
    finally:
        connections.close_all()


def chain_start() -> tuple[int, str]:
    """Where the chain starts: after the last prune (the sequence it pruned through and that
    event's hash), else at the first event, linked to the genesis hash."""
    pruned = (
        AuditEvent.objects.filter(action=PRUNED)
        .order_by("-sequence")
        .values_list("details", flat=True)
        .first()
    )
    if pruned:
        return int(pruned["through"]), str(pruned["last_hash"])
    return 0, GENESIS_HASH


def _joined(parts: list[tuple[int, _Range]], start: int, previous: str):
    """Put the ranges back together in order: the first break wins; each range's first event
    must be the next number and link to the previous range's last. Returns (checked, last
    hash) when intact."""
    checked, expected = 0, start + 1
    for _low, part in parts:
        if part.first is None:
            continue  # nothing in this range: the next one (or the head) says what is missing
        sequence, links_to = part.first
        if sequence != expected:
            return ChainReport(
                checked, expected, f"event #{expected} is missing (the chain jumps to #{sequence})"
            )
        if links_to != previous:
            return ChainReport(checked, sequence, f"event #{sequence} does not link to event "
                               f"#{sequence - 1} (rows removed or reordered)")  # fmt: skip
        if part.broken_at is not None:
            return ChainReport(checked + part.checked, part.broken_at, part.reason)
        checked += part.checked
        if part.last is not None:
            expected, previous = part.last[0] + 1, part.last[1]
    return checked, previous


def verify_chain(chunk_size: int = 5000, processes: int | None = None) -> ChainReport:
    """Walk the whole chain and report the first event that breaks it (or, at the end, a chain
    head that does not match the last event: events removed from the end)."""
    start, previous = chain_start()
    with transaction.atomic():  # the head and the last row as one moment: writers wait a blink
        head = ChainHead.objects.select_for_update().filter(id=1).first()
        highest = (
            AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first()
        )
    top = max(highest or 0, head.sequence if head else 0)
    count = top - start
    if processes is None:
        processes = min(os.cpu_count() or 1, 4) if count >= PARALLEL_FROM else 1
    if connection.in_atomic_block:  # other processes could not see uncommitted rows
        processes = 1
    if processes <= 1:
        parts = [(start, _walk(start, top, previous, chunk_size))]
    else:
        step = -(-count // processes)
        bounds = [(low, min(low + step, top), chunk_size) for low in range(start, top, step)]
        connections.close_all()  # each child opens its own connection
        with multiprocessing.get_context("fork").Pool(len(bounds)) as pool:
            parts = list(zip((b[0] for b in bounds), pool.map(_walk_in_child, bounds), strict=True))
    joined = _joined(parts, start, previous)
    if isinstance(joined, ChainReport):
        return ChainReport(joined.checked, joined.broken_at, joined.reason, start + 1)
    checked, last_hash = joined
    last = start + checked
    if head is not None and (head.sequence != last or head.hash != last_hash):
        if head.sequence > last:
            reason = f"events #{last + 1} to #{head.sequence} are missing from the end of the chain"
            return ChainReport(checked, last + 1, reason, start + 1)
        reason = "the chain head does not match the last event"
        return ChainReport(checked, head.sequence, reason, start + 1)
    return ChainReport(checked, starts_at=start + 1)
