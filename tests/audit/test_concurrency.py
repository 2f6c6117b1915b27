"""Many writers at once still make one unbroken chain: each locks the chain head row."""

import threading

import pytest
from django.core.management.color import no_style
from django.db import connection, connections

from remora_admin.audit.chain import verify_chain
from remora_admin.audit.log import record
from remora_admin.audit.models import AuditEvent, ChainHead

EVENTS_PER_WRITER = 25


WRITERS = ("alice", "bob", "charlie", "dave", "erin", "frank", "grace", "heidi")


def _write_concurrently(writers: int, events: int = EVENTS_PER_WRITER) -> list[BaseException]:
    """Start `writers` threads together, each recording `events` events."""
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(name: str) -> None:
        try:
            start.wait(timeout=30)
            for i in range(events):
                record("service.deleted", actor_name=name, details={"n": i})
        except BaseException as exc:  # reported to the test, which fails on it
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(name,)) for name in WRITERS[:writers]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a writer hung"
    return errors


def _assert_one_unbroken_chain(total: int) -> None:
    sequences = list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, total + 1))
    report = verify_chain()
    assert report.ok, report.reason
    assert report.checked == total
    assert ChainHead.objects.get(id=1).sequence == total


@pytest.mark.django_db(transaction=True)
def test_two_writers_at_once_make_one_unbroken_chain():
    record("zone.created")  # the chain head row exists before the writers start

    errors = _write_concurrently(2)

    assert errors == []
    _assert_one_unbroken_chain(1 + 2 * EVENTS_PER_WRITER)


@pytest.mark.django_db(transaction=True)
def test_four_writers_at_once_make_one_unbroken_chain():
    record("zone.created")

    errors = _write_concurrently(4)

    assert errors == []
    _assert_one_unbroken_chain(1 + 4 * EVENTS_PER_WRITER)
    for name in WRITERS[:4]:
        assert AuditEvent.objects.filter(actor_name=name).count() == EVENTS_PER_WRITER


def _reset_the_log() -> None:
    """Empty the audit log the way a test database reset does (see tests/conftest.py)."""
    tables = [AuditEvent._meta.db_table, ChainHead._meta.db_table]
    with connection.cursor() as cursor:
        for sql in connection.ops.sql_flush(no_style(), tables, reset_sequences=True):
            cursor.execute(sql)


@pytest.mark.django_db(transaction=True)
def test_writers_racing_for_the_first_events_of_a_new_log_make_one_unbroken_chain():
    # The first event creates the chain head row; several writers may get there at once (two
    # people signing in right after an install). Many fresh logs make a lost race near certain.
    for _ in range(30):
        _reset_the_log()
        assert AuditEvent.objects.count() == 0

        errors = _write_concurrently(8, events=3)

        assert errors == []
        _assert_one_unbroken_chain(8 * 3)
