"""Exports of the review's current filter: CSV (formula cells neutralised) and JSON Lines,
streamed; parsed back they hold the same events with the same hashes (each recomputes from its
own fields); the export is itself an audit event recording the filter; a bad filter is refused."""

import csv
import io
import json
from datetime import datetime

import pytest

from remora_admin.audit.log import record
from remora_admin.audit.models import HASHED_FIELDS, AuditEvent, chain_hash

pytestmark = pytest.mark.django_db


def body(response) -> str:
    assert response.streaming
    return b"".join(response.streaming_content).decode()


def test_json_lines_round_trip_with_the_same_hashes_and_the_export_is_audited(auditor):
    for i in range(7):
        record("run.requested", actor_name="bob", details={"i": i, "host": "beamrider"})
    response = auditor.get("/audit/export.jsonl", {"person": "bob"})
    rows = [json.loads(line) for line in body(response).splitlines()]

    held = AuditEvent.objects.filter(actor_name="bob").order_by("-sequence")
    assert [r["sequence"] for r in rows] == [e.sequence for e in held]
    for row in rows:
        fields = {k: row[k] for k in HASHED_FIELDS}
        fields["occurred_at"] = datetime.fromisoformat(row["occurred_at"])
        assert chain_hash(fields) == row["hash"]  # each event checks on its own
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.details["filters"] == {"person": "bob"} and exported.actor_name == "ivan"
    assert "attachment" in response["Content-Disposition"]


def test_csv_neutralises_formula_cells_and_parses_back(auditor):
    record("grant.created", actor_name="=HYPERLINK(1)", details={"reason": "x"})
    text = body(auditor.get("/audit/export.csv", {"action": "grant.created"}))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 1
    assert rows[0]["actor_name"] == "'=HYPERLINK(1)"
    assert json.loads(rows[0]["details"]) == {"reason": "x"}
    assert rows[0]["hash"] == AuditEvent.objects.get(action="grant.created").hash


def test_a_bad_filter_exports_nothing(auditor):
    response = auditor.get("/audit/export.csv", {"since": "yesterday"})
    assert response.status_code == 400
    assert not AuditEvent.objects.filter(action="audit.exported").exists()
