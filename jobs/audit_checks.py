"""The audit chain's verification (asked from the audit page, and daily by the ticker) and its
retention (archive and prune) as work for a worker. A break raises the "audit chain broken"
alert (once, until a verification passes)."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from remora_admin.audit import retention, verification
from remora_admin.audit.log import record
from remora_admin.audit.models import AuditArchive, ChainVerification

from . import alerts, queue
from .models import Alert

VERIFY = "jobs.audit_checks.verify"
KEY = "audit_chain"


def verify(verification_id: int) -> str:
    done = verification.run(ChainVerification.objects.get(pk=verification_id))
    if done.ok:
        alerts.clear(KEY, f"verified {done.checked} events")
        return "intact"
    alerts.raise_alert(
        Alert.Kind.AUDIT_CHAIN,
        KEY,
        f"The audit chain is broken at event #{done.broken_at}",
        f"{done.reason}. Verified {done.finished_at:%Y-%m-%d %H:%M} UTC.",
    )
    return "broken"


def ask(user=None, request=None) -> ChainVerification:
    """A verification for a worker to run (the page polls its row); asking is audited."""
    queue.check_available()
    with transaction.atomic():
        asked = ChainVerification.objects.create(requested_by=user)
        record("audit.verify_requested", request=request, actor=user, actor_name=(
            "" if user else "ticker (daily)"), target=asked)  # fmt: skip
        transaction.on_commit(
            lambda: queue.queue().enqueue(VERIFY, asked.pk, job_timeout=3600, result_ttl=600)
        )
    return asked


def daily(now=None) -> ChainVerification | None:
    """The daily verification: asked when none was asked in the last 24 hours."""
    now = now or timezone.now()
    if ChainVerification.objects.filter(requested_at__gt=now - timedelta(hours=24)).exists():
        return None
    return ask()


PRUNE = "jobs.audit_checks.prune"


def ask_prune(user, older_than_days: int, request=None) -> AuditArchive:
    """Archive and prune the events older than N days, in a worker (asked by a superadmin;
    the policy is asked by the view). Refused in words when there is nothing to prune."""
    planned = retention.plan(older_than_days)
    if planned is None:
        raise retention.RetentionRefused(f"No event is older than {older_than_days} days.")
    queue.check_available()
    with transaction.atomic():
        asked = AuditArchive.objects.create(
            requested_by=user, older_than_days=older_than_days, first=planned[0],
            through=planned[1],
        )  # fmt: skip
        record("audit.prune_requested", request=request, actor=user, target=asked,
               details={"older_than_days": older_than_days, "first": planned[0],
                        "through": planned[1]})  # fmt: skip
        transaction.on_commit(
            lambda: queue.queue().enqueue(PRUNE, asked.pk, job_timeout=7200, result_ttl=600)
        )
    return asked


def prune(archive_id: int) -> str:
    done = retention.archive_and_prune(AuditArchive.objects.get(pk=archive_id))
    return str(done.status)
