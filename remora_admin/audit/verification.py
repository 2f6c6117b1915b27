"""A verification of the chain as a row people can watch: the chain's own links (`verify_chain`),
then the copy off the box (`sink.compare`), then a checkpoint; the result and the first bad
event are kept and audited."""

import time

from django.utils import timezone

from . import sink
from .chain import verify_chain
from .log import record
from .models import ChainVerification


def run(verification: ChainVerification) -> ChainVerification:
    started = time.monotonic()
    ChainVerification.objects.filter(pk=verification.pk).update(started_at=timezone.now())
    report = verify_chain()
    broken_at, reason, copy_checked = report.broken_at, report.reason, None
    if report.ok:
        sink.flush()
        against = sink.compare(after=report.starts_at - 1)
        if against is not None:
            copy_checked = against.checked
            if against.first_rewritten is not None:
                broken_at = against.first_rewritten
                reason = f"{against.reason} (the chain links, but not to what was written then)"
        if broken_at is None:
            sink.checkpoint()
    ChainVerification.objects.filter(pk=verification.pk).update(
        finished_at=timezone.now(), checked=report.checked, copy_checked=copy_checked,
        broken_at=broken_at, reason=reason[:300], seconds=time.monotonic() - started,
    )  # fmt: skip
    verification.refresh_from_db()
    record(
        "audit.verified" if broken_at is None else "audit.chain_broken",
        actor_name="verifier",
        target=verification,
        details={"checked": report.checked, "copy_checked": copy_checked,
                 "broken_at": broken_at, "reason": reason,
                 "requested_by": str(verification.requested_by or "daily")},
    )  # fmt: skip
    return verification
