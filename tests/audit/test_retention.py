"""Retention: events older than N days are archived to a file that checks on its own, then
pruned with a chained event; the rest of the chain still verifies, the copy off the box still
matches, and no other delete gets through. Also: the verifier's fast encoding is the canonical
one, and its parallel walk names the same first bad event as the serial one."""

import gzip
import hashlib
import json
from datetime import UTC, datetime
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from jobs import audit_checks
from remora_admin.audit import retention, sink
from remora_admin.audit.chain import canonical_text, occurred_text, verify_chain
from remora_admin.audit.log import record
from remora_admin.audit.models import HASHED_FIELDS, AuditArchive, AuditEvent, ChainHead, canonical
from tests.audit.test_chain import tampering

OLD = datetime(2026, 1, 10, 9, tzinfo=UTC)
NOW = datetime(2026, 6, 1, 9, tzinfo=UTC)


@pytest.fixture(autouse=True)
def archives(tmp_path, settings):
    settings.REMORA_AUDIT_ARCHIVE_DIR = str(tmp_path / "archives")


def _history(old: int = 5, new: int = 3) -> None:
    with time_machine.travel(OLD, tick=False):
        for i in range(old):
            record("service.updated", zone="beamrider", details={"step": i, "note": "ancien é"})
    with time_machine.travel(NOW, tick=False):
        for i in range(new):
            record("service.updated", zone="sunjammer", details={"step": old + i})


def _archive(days: int = 30) -> AuditArchive:
    with time_machine.travel(NOW, tick=False):
        first, through = retention.plan(days)
        asked = AuditArchive.objects.create(older_than_days=days, first=first, through=through)
        return retention.archive_and_prune(asked)


# --- The fast encoding --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "row",
    [
        {"actor_id": None, "ip": None, "details": {}},
        {"actor_id": 7, "ip": "2001:db8::1", "details": {"b": [1, 2.5, None], "a": {"z": "é"}}},
        {
            "actor_name": 'quote " back \\ slash',
            "target_repr": "tab\tnew\nline \u2028 \x00",
            "details": {"emoji": "🦈", "ctrl": "\x1f", "big": 2**70, "neg": -0.0},
        },
    ],  # fmt: skip
)
def test_the_fast_encoding_is_byte_for_byte_the_canonical_one(row):
    values = {"sequence": 12, "occurred_at": datetime(2026, 3, 4, 5, 6, 7, 89, tzinfo=UTC),
              "actor_id": 1, "actor_name": "ivan", "action": "run.requested",
              "target_type": "jobs.jobrun", "target_id": "3", "target_repr": "run #3",
              "zone": "beamrider", "ip": "127.0.0.1", "user_agent": "Mozilla/5.0",
              "details": {}, "previous_hash": "ab" * 32}  # fmt: skip
    values.update(row)
    fast = canonical_text(
        *[occurred_text(values[n]) if n == "occurred_at" else values[n] for n in HASHED_FIELDS]
    )
    assert fast == canonical(values)


def test_stored_times_read_as_text_encode_like_the_datetime():
    assert occurred_text("2026-03-04 05:06:07.000089") == "2026-03-04T05:06:07.000089+00:00"
    assert occurred_text("2026-03-04 05:06:07") == "2026-03-04T05:06:07.000000+00:00"  # SQLite
    assert occurred_text(datetime(2026, 3, 4, 5, 6, 7)) == "2026-03-04T05:06:07.000000+00:00"


@pytest.mark.django_db(transaction=True)
def test_the_parallel_walk_names_the_same_first_bad_event_as_the_serial_one():
    _history(old=30, new=10)
    assert verify_chain(processes=3).ok
    assert verify_chain(processes=3).checked == AuditEvent.objects.count()
    with tampering() as cursor:  # one early in the second range, one later
        cursor.execute("UPDATE audit_auditevent SET zone = 'x' WHERE sequence IN (17, 33)")
    serial, parallel = verify_chain(processes=1), verify_chain(processes=3)
    assert (parallel.broken_at, parallel.checked, parallel.reason) == (
        serial.broken_at, serial.checked, serial.reason) == (17, 16, serial.reason)  # fmt: skip
    with tampering() as cursor:  # a row removed at a range's edge: the link across is checked
        cursor.execute("UPDATE audit_auditevent SET zone = 'sunjammer' WHERE sequence = 33")
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence = 14")
    assert verify_chain(processes=3).broken_at == verify_chain(processes=1).broken_at == 14


# --- Archive and prune ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_old_events_are_archived_then_pruned_and_what_stays_still_verifies(tmp_path, settings):
    settings.REMORA_AUDIT_SINK = f"file:{tmp_path / 'sink.jsonl'}"
    _history(old=5, new=3)
    last_old_hash = AuditEvent.objects.get(sequence=5).hash

    done = _archive(days=30)

    assert done.status == AuditArchive.Status.DONE, done.reason
    assert (done.first, done.through) == (1, 5)
    assert not AuditEvent.objects.filter(sequence__lte=5).exists()
    pruned = AuditEvent.objects.get(action="audit.pruned")
    assert pruned.details["last_hash"] == last_old_hash
    assert pruned.details["archive_sha256"] == done.sha256
    path = retention.archive_dir() / done.filename
    assert hashlib.sha256(path.read_bytes()).hexdigest() == done.sha256
    report = verify_chain()
    assert report.ok and report.starts_at == 6
    assert report.checked == AuditEvent.objects.count()
    # The copy off the box still holds the pruned events; comparing skips them, not the rest.
    assert sink.compare(after=5).first_rewritten is None
    # The archive checks on its own and names the prune event that records it.
    archived = retention.verify_archive(path)
    assert (archived.ok, archived.first, archived.last, archived.checked) == (True, 1, 5, 5)
    out = StringIO()
    call_command("audit_verify", archive=str(path), stdout=out)
    assert f"recorded by prune event #{pruned.sequence}" in out.getvalue()
    assert "Audit chain intact" in _verify()


def _verify() -> str:
    out = StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_second_prune_links_to_the_first_and_the_archives_chain(tmp_path):
    _history(old=4, new=0)
    first = _archive()
    with time_machine.travel(OLD.replace(month=2), tick=False):
        record("service.updated", details={"later": True})
        record("service.updated", details={"later": True})
    second = _archive()

    assert (second.first, second.status) == (first.through + 1, AuditArchive.Status.DONE)
    one = retention.verify_archive(retention.archive_dir() / first.filename)
    two = retention.verify_archive(retention.archive_dir() / second.filename)
    assert two.links_to == one.last_hash  # the archives chain on from each other
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_an_altered_archive_is_caught_and_named():
    _history(old=4, new=1)
    done = _archive()
    path = retention.archive_dir() / done.filename
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    row = json.loads(lines[2])
    row["actor_name"] = "someone-else"
    lines[2] = json.dumps(row)
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))

    report = retention.verify_archive(path)
    assert (report.ok, report.broken_at, report.checked) == (False, 3, 2)
    with pytest.raises(CommandError, match="Archive BROKEN at event #3"):
        call_command("audit_verify", archive=str(path), stdout=StringIO())


@pytest.mark.django_db(transaction=True)
def test_deleting_events_without_a_recorded_prune_is_refused_and_caught():
    _history(old=4, new=1)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence <= 2")
    assert AuditEvent.objects.count() == 5
    # Moving the mark by hand lets the trigger through, but no prune event says where the
    # chain starts: the verifier names the first event missing.
    ChainHead.objects.filter(id=1).update(pruned_through=2)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence <= 2")
    report = verify_chain()
    assert (report.ok, report.broken_at) == (False, 1)
    assert "event #1 is missing" in report.reason


@pytest.mark.django_db(transaction=True)
def test_a_broken_chain_is_not_pruned(tmp_path):
    _history(old=4, new=1)
    with tampering() as cursor:
        cursor.execute("UPDATE audit_auditevent SET actor_name = 'x' WHERE sequence = 2")

    done = _archive()

    assert done.status == AuditArchive.Status.FAILED
    assert "broken at event #2" in done.reason
    assert AuditEvent.objects.filter(sequence__lte=4).count() == 4
    assert AuditEvent.objects.filter(action="audit.prune_refused").exists()
    assert not list(retention.archive_dir().glob("*.jsonl.gz"))  # checked before writing


@pytest.mark.django_db
def test_asking_says_in_words_when_nothing_is_old_enough(topology):
    with pytest.raises(retention.RetentionRefused, match="No event is older than 30 days"):
        audit_checks.ask_prune(None, 30)
    with pytest.raises(retention.RetentionRefused, match="1 to 36500 days"):
        retention.plan(0)
    assert not AuditArchive.objects.exists()


# --- The page ---------------------------------------------------------------------------------


@pytest.fixture
def lead(topology):
    from tests.access.helpers import authenticator, make_user, sign_in

    user = make_user("bernie", is_superuser=True, is_staff=True)
    authenticator(user)
    return sign_in(user, verified=True, sudo=True)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "form, says",
    [
        ({"older_than_days": "0", "confirm": "on"}, "greater than or equal to 1"),
        ({"older_than_days": "ten", "confirm": "on"}, "Enter a whole number"),
        ({"older_than_days": "30"}, "This field is required"),
        ({"older_than_days": "30", "confirm": "on"}, "No event is older than 30 days"),
    ],
)
def test_a_bad_request_to_prune_says_why_and_changes_nothing(lead, form, says):
    before = AuditEvent.objects.count()
    response = lead.post("/audit/retention/prune/", form)
    assert response.status_code == 400
    assert says in response.content.decode()
    assert not AuditArchive.objects.exists()
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_a_superadmin_asks_for_a_prune_and_the_page_shows_it(lead):
    with time_machine.travel(OLD, tick=False):
        record("service.updated", details={"old": True})
    with time_machine.travel(NOW, tick=False):
        preview = lead.get("/audit/retention/", {"older_than_days": "30"}).content.decode()
        response = lead.post("/audit/retention/prune/", {"older_than_days": "30", "confirm": "on"})
        page = lead.get("/audit/retention/")  # (the session lives in that time)
    asked = AuditArchive.objects.get()
    assert f"That is events #1 to #{asked.through}" in preview
    assert response.status_code == 302
    assert asked.status == AuditArchive.Status.QUEUED
    assert AuditEvent.objects.filter(action="audit.prune_requested").count() == 1
    assert page.status_code == 200, page.headers.get("Location")
    page = page.content.decode()
    assert f"#1 to #{asked.through}" in page and 'hx-trigger="every 2s"' in page


@pytest.mark.django_db(transaction=True)
def test_events_stored_before_details_were_canonical_still_verify():
    """The database checks each hash itself; an event it cannot match (details stored in
    another JSON layout, as before they were stored canonical) is checked again in Python,
    which finds it intact; an event really altered is still named."""
    _history(old=3, new=2)
    with tampering() as cursor:
        cursor.execute(
            'UPDATE audit_auditevent SET details = \'{"note": "ancien \u00e9", "step": 1}\' '
            "WHERE sequence = 2"
        )  # the same values, another layout
    assert verify_chain(processes=1).ok
    with tampering() as cursor:
        cursor.execute(
            'UPDATE audit_auditevent SET details = \'{"note": "ancien \u00e9", "step": 9}\' '
            "WHERE sequence = 2"
        )
    report = verify_chain(processes=1)
    assert (report.broken_at, report.reason) == (2, "event #2 was altered after it was written")


@pytest.mark.django_db(transaction=True)
def test_the_python_walk_used_off_mariadb_names_the_same_first_bad_event():
    from remora_admin.audit import chain
    from remora_admin.audit.models import GENESIS_HASH

    _history(old=3, new=2)
    top = AuditEvent.objects.count()
    here = chain._walk_here(0, top, GENESIS_HASH, 2)
    assert (here.checked, here.broken_at) == (top, None)
    with tampering() as cursor:
        cursor.execute("UPDATE audit_auditevent SET zone = 'x' WHERE sequence = 4")
    here, server = chain._walk_here(0, top, GENESIS_HASH, 2), chain._walk(0, top, GENESIS_HASH, 2)
    assert (here.broken_at, here.checked, here.reason) == (
        server.broken_at, server.checked, server.reason) == (4, 3, server.reason)  # fmt: skip
