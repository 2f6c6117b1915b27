"""One event's page: a change's before and after side by side (a run's whole story:
tests/jobs/test_audit_story.py)."""

import pytest

from remora_admin.audit.log import record

pytestmark = pytest.mark.django_db


def test_a_change_shows_before_and_after_side_by_side(auditor):
    event = record(
        "host.updated", details={"before": {"ssh_port": 22}, "after": {"ssh_port": 2222}}
    )
    page = auditor.get(f"/audit/{event.sequence}/").content.decode()
    assert "What changed" in page
    assert "<td><code>ssh_port</code></td><td>22</td><td>2222</td>" in page
