"""The audit log's copy off the box: every committed event reaches the sink once, in order,
with its hash (a rolled-back one never does, secrets never do); checkpoints record the chain
head; a chain rewritten consistently from some event on still links, and is caught by comparing
with the copy, naming the first rewritten event, also by `manage.py audit_verify`."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import override_settings

from remora_admin.audit import sink
from remora_admin.audit.chain import verify_chain
from remora_admin.audit.log import record
from remora_admin.audit.models import AuditEvent, ChainHead, chain_hash

from .test_chain import tampering

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def off_box(tmp_path):
    path = tmp_path / "audit-sink.jsonl"
    with override_settings(REMORA_AUDIT_SINK=f"file:{path}"):
        yield path


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_committed_event_reaches_the_sink_once_in_order_and_no_secret(off_box):
    for i in range(5):
        record("service.updated", details={"step": i, "password": "canary-Pw-0001"})
    try:
        with transaction.atomic():
            record("service.updated", details={"step": "rolled back"})
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    record("service.updated", details={"step": 5})
    sink.flush()  # nothing left to send: no line twice

    sent = lines(off_box)
    assert [e["sequence"] for e in sent] == [1, 2, 3, 4, 5, 6]
    assert [e["details"]["step"] for e in sent] == [0, 1, 2, 3, 4, 5]
    assert [e["hash"] for e in sent] == list(
        AuditEvent.objects.order_by("sequence").values_list("hash", flat=True)
    )
    assert "canary-Pw-0001" not in off_box.read_text()


def test_a_checkpoint_records_the_chain_head(off_box):
    for i in range(3):
        record("service.updated", details={"step": i})
    mark = sink.checkpoint()
    head = ChainHead.objects.get()
    assert mark["sequence"] == head.sequence == 3 and mark["hash"] == head.hash
    assert lines(off_box)[-1] == {"checkpoint": mark}
    assert sink.compare().first_rewritten is None


def rewrite_from(first: int) -> None:
    """What someone with write access to the database could do: change event `first` and
    recompute every hash from it on, so that the chain links again."""
    events = list(AuditEvent.objects.filter(sequence__gte=first).order_by("sequence"))
    previous = AuditEvent.objects.get(sequence=first - 1).hash
    with tampering() as cursor:
        for event in events:
            event.details = (
                {**event.details, "step": "rewritten"}
                if event.sequence == first
                else (event.details)
            )
            event.previous_hash = previous
            row = {name: getattr(event, name) for name in (
                "sequence", "occurred_at", "actor_id", "actor_name", "action", "target_type",
                "target_id", "target_repr", "zone", "ip", "user_agent", "details", "previous_hash",
            )}  # fmt: skip
            event.hash = chain_hash(row)
            cursor.execute(
                "UPDATE audit_auditevent SET details = %s, previous_hash = %s, hash = %s "
                "WHERE sequence = %s",
                [json.dumps(event.details), event.previous_hash, event.hash, event.sequence],
            )
            previous = event.hash
    ChainHead.objects.filter(id=1).update(hash=previous)


def test_a_consistent_rewrite_links_but_the_copy_off_the_box_names_the_first_rewritten_event(
    off_box,
):
    for i in range(8):
        record("service.updated", details={"step": i})
    sink.checkpoint()

    rewrite_from(4)

    assert verify_chain().ok  # the chain itself links: only the copy can tell
    against = sink.compare()
    assert against.first_rewritten == 4
    assert "event #4 was rewritten" in against.reason
    with pytest.raises(CommandError, match="REWRITTEN from event #4"):
        call_command("audit_verify", stdout=StringIO())


def test_an_intact_chain_verifies_against_its_copy_and_gets_a_checkpoint(off_box):
    for i in range(4):
        record("service.updated", details={"step": i})
    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert "4 match their copy off the box; checkpoint written at #4" in out.getvalue()
    assert lines(off_box)[-1]["checkpoint"]["sequence"] == 4
