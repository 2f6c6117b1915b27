"""A host presented a key other than the pinned one: flag the host and record it.

On its own so that the worker (`tasks`) can flag a host without importing the reaper and the
reconciler (`faults`), which import the queue: no import cycle among the jobs modules.
"""

from typing import Any

from django.db import transaction

from hosts.credentials import fingerprint
from remora_admin.audit.log import record

from .models import JobRun


def flag_host_key(host: Any, seen_key: str, run: JobRun | None = None) -> None:
    """A connection met a key other than the pinned one: flag the host and raise an alert."""
    with transaction.atomic():
        type(host).objects.filter(pk=host.pk).update(
            seen_host_key=seen_key,
            seen_host_key_fingerprint=fingerprint(seen_key),
            host_key_alert="host key changed: connections are refused until the key is checked",
        )
        record(
            "host.host_key_mismatch",
            actor_name="worker",
            target=host,
            zone=host.zone.name,
            details={
                "pinned": host.host_key_fingerprint,
                "seen": fingerprint(seen_key),
                "run": run.pk if run else None,
            },
        )
