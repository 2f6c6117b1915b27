"""Verifying the chain from the browser: an auditor asks, a worker verifies (the chain's links,
then its copy off the box), the page shows the result and stops polling; a broken chain names
its first bad event and raises the alert once; the daily verification is asked once a day."""

import pytest
from django.test import override_settings

from jobs import audit_checks
from jobs.models import Alert
from remora_admin.audit.log import record
from remora_admin.audit.models import AuditEvent, ChainVerification

from .test_chain import tampering

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_auditor_verifies_the_chain_from_the_page(auditor, redis_conn, tmp_path):
    with override_settings(REMORA_AUDIT_SINK=f"file:{tmp_path / 'sink.jsonl'}"):
        for i in range(5):
            record("service.updated", details={"step": i})
        assert auditor.post("/audit/verify/").status_code == 302
        asked = ChainVerification.objects.get()
        assert AuditEvent.objects.filter(action="audit.verify_requested").exists()
        polling = auditor.get(f"/audit/verify/{asked.pk}/", headers={"HX-Request": "true"})
        assert polling.status_code == 200 and "Verifying the chain" in polling.content.decode()

        assert audit_checks.verify(asked.pk) == "intact"  # what the worker runs

    page = auditor.get("/audit/").content.decode()
    assert "Chain intact:" in page and "match their copy off the box" in page
    done = auditor.get(f"/audit/verify/{asked.pk}/", headers={"HX-Request": "true"})
    assert done.status_code == 286  # htmx stops polling
    assert AuditEvent.objects.filter(action="audit.verified").count() == 1


def test_a_broken_chain_names_its_first_bad_event_and_raises_the_alert_once(auditor, redis_conn):
    for i in range(5):
        record("service.updated", details={"step": i})
    with tampering() as cursor:
        cursor.execute("UPDATE audit_auditevent SET action = 'service.deleted' WHERE sequence = 3")
    for _ in range(2):
        asked = audit_checks.ask()
        assert audit_checks.verify(asked.pk) == "broken"
    page = auditor.get("/audit/").content.decode()
    assert "Chain broken at event #3" in page and "was altered after it was written" in page
    alert = Alert.objects.get(kind="audit_chain")
    assert alert.title == "The audit chain is broken at event #3" and alert.seen == 2


def test_the_daily_verification_is_asked_once_a_day(topology, redis_conn):
    assert audit_checks.daily() is not None
    assert audit_checks.daily() is None
    assert ChainVerification.objects.count() == 1
