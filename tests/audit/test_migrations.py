"""The audit log's own migrations run on a database that already holds events (an upgrade):
the append-only triggers stay in force around them, and what they add is filled for the events
already there, without a hash changing."""

import pytest
from django.core.management import call_command
from django.db import connection

from remora_admin.audit.chain import verify_chain
from remora_admin.audit.log import record
from remora_admin.audit.models import AuditEvent

from .test_chain import TRIGGER_NAMES, _trigger_names


@pytest.mark.django_db(transaction=True)
def test_upgrading_a_log_that_holds_events(topology):
    from hosts.models import Host

    record("host.updated", target=Host.objects.get(name="beamrider"))
    record("service.updated", details={"host": "sunjammer", "note": "before the upgrade"})
    count = AuditEvent.objects.count()
    try:
        call_command("migrate", "audit", "0012", verbosity=0)  # before host and search
        call_command("migrate", "audit", verbosity=0)
    finally:
        connection.close()
    assert _trigger_names() == TRIGGER_NAMES
    events = AuditEvent.objects.order_by("sequence")
    assert events.count() == count
    hosts = {e.host for e in events if e.action in ("host.updated", "service.updated")}
    assert {"beamrider", "sunjammer"} <= hosts
    assert all(e.search for e in events)
    assert verify_chain().ok
