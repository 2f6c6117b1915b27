"""The audit log's hash chain: how events are written, and how tampering is caught.

Tampering happens the way an intruder with a SQL session would do it: below the ORM, with the
append-only triggers dropped for the duration (and put back afterwards).
"""

import importlib
from contextlib import contextmanager
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from remora_admin.audit.chain import verify_chain
from remora_admin.audit.log import REDACTED, record
from remora_admin.audit.models import GENESIS_HASH, AuditEvent, AuditLogIsAppendOnly, ChainHead

triggers = importlib.import_module("remora_admin.audit.migrations.0009_delete_only_pruned")
TABLE = triggers.TABLE
assert TABLE == "audit_auditevent"  # the raw SQL below names it
TRIGGER_NAMES = {"audit_event_no_update", "audit_event_no_delete"}


def _trigger_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT trigger_name FROM information_schema.triggers "
            "WHERE event_object_schema = DATABASE() AND event_object_table = %s",
            [TABLE],
        )
        return {row[0] for row in cursor.fetchall()}


@contextmanager
def tampering():
    """A raw cursor on the audit table with its append-only triggers dropped, then restored.

    DROP/CREATE TRIGGER commit implicitly on MariaDB, so only transactional tests may use it.
    """
    with connection.cursor() as cursor:
        for sql in triggers.DROP:
            cursor.execute(sql)
        try:
            yield cursor
        finally:
            for sql in triggers.MYSQL_CREATE:
                cursor.execute(sql)
    assert _trigger_names() == TRIGGER_NAMES


def _write_events(n: int) -> list[AuditEvent]:
    return [record("service.updated", details={"step": i}) for i in range(1, n + 1)]


def _verify_output() -> str:
    out = StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue()


# --- Writing --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_record_writes_events_in_sequence_each_linked_to_the_one_before():
    first, second, third = _write_events(3)

    assert [first.sequence, second.sequence, third.sequence] == [1, 2, 3]
    assert first.previous_hash == GENESIS_HASH == "0" * 64
    assert second.previous_hash == first.hash
    assert third.previous_hash == second.hash
    assert len({first.hash, second.hash, third.hash}) == 3


@pytest.mark.django_db
def test_a_stored_event_hashes_to_the_hash_it_was_written_with():
    record("service.updated", actor_name="alice", target_repr="beamrider", zone="beamrider")

    stored = AuditEvent.objects.get(sequence=1)

    assert len(stored.hash) == 64
    assert stored.compute_hash() == stored.hash


@pytest.mark.django_db
def test_the_chain_head_follows_the_last_event():
    *_, last = _write_events(3)

    head = ChainHead.objects.get(id=1)

    assert (head.sequence, head.hash) == (3, last.hash)


@pytest.mark.django_db
def test_verify_chain_reports_an_intact_chain():
    _write_events(5)

    report = verify_chain()

    assert report.ok
    assert report.checked == 5
    assert report.broken_at is None


@pytest.mark.django_db
def test_verify_chain_reads_the_chain_in_chunks():
    _write_events(7)

    report = verify_chain(chunk_size=2)

    assert report.ok
    assert report.checked == 7


@pytest.mark.django_db
def test_audit_verify_says_an_intact_chain_is_intact():
    _write_events(4)

    output = _verify_output()

    assert "intact" in output
    assert "4 events verified" in output


@pytest.mark.django_db
def test_audit_verify_accepts_an_empty_log():
    output = _verify_output()

    assert "intact: 0 events verified" in output


# --- Secrets ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_secrets_in_details_are_stored_redacted_however_deep():
    record(
        "host.updated",
        details={
            "password": "hunter2",
            "host": "beamrider",
            "ssh": {"private_key": "-----BEGIN OPENSSH PRIVATE KEY-----", "port": 22},
            "tokens": [{"token": "tok-123", "name": "deploy"}],
            "api_token": "abc-456",
        },
    )

    stored = AuditEvent.objects.get(sequence=1)

    assert stored.details == {
        "password": REDACTED,
        "host": "beamrider",
        "ssh": {"private_key": REDACTED, "port": 22},
        "tokens": REDACTED,
        "api_token": REDACTED,
    }
    canonical = stored.canonical().decode()
    for secret in ("hunter2", "BEGIN OPENSSH", "tok-123", "abc-456"):
        assert secret not in canonical
    assert stored.compute_hash() == stored.hash


@pytest.mark.django_db
def test_secrets_inside_lists_of_mappings_are_redacted():
    record("run.succeeded", details={"steps": [{"name": "deploy", "password": "hunter2"}]})

    stored = AuditEvent.objects.get(sequence=1)

    assert stored.details == {"steps": [{"name": "deploy", "password": REDACTED}]}


# --- Transactions -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_change_that_rolls_back_leaves_no_event_and_does_not_advance_the_head():
    kept = record("host.created")

    with pytest.raises(RuntimeError), transaction.atomic():
        record("host.deleted")
        raise RuntimeError("the change failed")

    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["host.created"]
    head = ChainHead.objects.get(id=1)
    assert (head.sequence, head.hash) == (1, kept.hash)
    after = record("zone.deleted")
    assert (after.sequence, after.previous_hash) == (2, kept.hash)
    assert verify_chain().ok


# --- Append-only: the model ------------------------------------------------------------------


@pytest.mark.django_db
def test_it_refuses_to_save_an_existing_event():
    event = record("service.updated")
    event.action = "test.rewritten"

    with pytest.raises(AuditLogIsAppendOnly):
        event.save()

    assert AuditEvent.objects.get(sequence=1).action == "service.updated"


@pytest.mark.django_db
def test_it_refuses_to_delete_an_event():
    event = record("service.updated")

    with pytest.raises(AuditLogIsAppendOnly):
        event.delete()

    assert AuditEvent.objects.count() == 1


@pytest.mark.django_db
def test_it_refuses_to_update_events_through_a_queryset():
    _write_events(2)

    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(sequence=1).update(action="test.rewritten")

    assert set(AuditEvent.objects.values_list("action", flat=True)) == {"service.updated"}


@pytest.mark.django_db
def test_it_refuses_to_bulk_update_events():
    events = _write_events(2)
    for event in events:
        event.action = "test.rewritten"

    # bulk_update() opens its own atomic block without a savepoint; give it one.
    with pytest.raises(AuditLogIsAppendOnly), transaction.atomic():
        AuditEvent.objects.bulk_update(events, ["action"])

    assert set(AuditEvent.objects.values_list("action", flat=True)) == {"service.updated"}


@pytest.mark.django_db
def test_it_refuses_to_delete_events_through_a_queryset():
    _write_events(2)

    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.all().delete()

    assert AuditEvent.objects.count() == 2


# --- Append-only: the database ---------------------------------------------------------------


@pytest.mark.django_db
def test_the_database_refuses_an_update_of_an_event():
    record("service.updated")

    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE audit_auditevent SET action = 'test.rewritten' WHERE sequence = 1")

    assert AuditEvent.objects.get(sequence=1).action == "service.updated"


@pytest.mark.django_db
def test_the_database_refuses_a_delete_of_an_event():
    record("service.updated")

    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence = 1")

    assert AuditEvent.objects.count() == 1


@pytest.mark.django_db
def test_both_append_only_triggers_exist():
    assert _trigger_names() == TRIGGER_NAMES


# --- Tampering --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_names_an_event_whose_action_was_edited():
    _write_events(5)

    with tampering() as cursor:
        cursor.execute("UPDATE audit_auditevent SET action = 'test.innocent' WHERE sequence = 3")

    report = verify_chain()
    assert not report.ok
    assert report.broken_at == 3
    assert report.checked == 2
    assert "altered" in report.reason


@pytest.mark.django_db(transaction=True)
def test_it_names_an_event_whose_details_were_edited():
    _write_events(3)

    with tampering() as cursor:
        cursor.execute("UPDATE audit_auditevent SET details = '{\"step\": 99}' WHERE sequence = 2")

    report = verify_chain()
    assert (report.broken_at, report.checked) == (2, 1)
    assert "altered" in report.reason


@pytest.mark.django_db(transaction=True)
def test_it_names_the_missing_sequence_when_a_middle_event_is_deleted():
    _write_events(5)

    with tampering() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence = 3")

    report = verify_chain()
    assert report.broken_at == 3
    assert report.checked == 2
    assert "#3 is missing" in report.reason


@pytest.mark.django_db(transaction=True)
def test_it_notices_two_events_swapped():
    _write_events(5)

    with tampering() as cursor:
        # sequence is unique, so the swap goes through a temporary value.
        cursor.execute("UPDATE audit_auditevent SET sequence = 1000000 WHERE sequence = 2")
        cursor.execute("UPDATE audit_auditevent SET sequence = 2 WHERE sequence = 3")
        cursor.execute("UPDATE audit_auditevent SET sequence = 3 WHERE sequence = 1000000")

    report = verify_chain()
    assert report.broken_at == 2
    assert report.checked == 1
    assert "does not link" in report.reason


@pytest.mark.django_db(transaction=True)
def test_it_notices_the_last_event_deleted_from_the_chain_head():
    _write_events(5)

    with tampering() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence = 5")

    report = verify_chain()
    assert report.broken_at == 5
    assert report.checked == 4
    assert "missing from the end" in report.reason


@pytest.mark.django_db(transaction=True)
def test_audit_verify_fails_and_names_the_broken_event():
    _write_events(5)
    with tampering() as cursor:
        cursor.execute("UPDATE audit_auditevent SET actor_name = 'bob' WHERE sequence = 4")

    with pytest.raises(CommandError) as excinfo:
        call_command("audit_verify")

    assert excinfo.value.returncode != 0
    message = str(excinfo.value)
    assert "BROKEN at event #4" in message
    assert "altered" in message
    assert "3 events before it are intact" in message


@pytest.mark.django_db(transaction=True)
def test_the_triggers_are_back_after_tampering():
    _write_events(1)
    with tampering():
        pass

    with pytest.raises(DatabaseError, match="append-only"), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence = 1")

    assert AuditEvent.objects.count() == 1


# --- Users come and go; their events stay -----------------------------------------------------


@pytest.mark.django_db
def test_deleting_a_user_keeps_their_events_and_the_chain_intact():
    alice = get_user_model().objects.create_user("alice", password="alice-password-1")
    record("host.updated", actor=alice)

    alice.delete()

    event = AuditEvent.objects.get(sequence=1)
    assert event.actor_name == "alice"
    assert verify_chain().ok
