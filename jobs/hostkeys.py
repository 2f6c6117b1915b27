"""Pinning a host's key (the one audited trust path), and flagging a host that presented a key
other than the pinned one.

On its own so that the worker (`tasks`) can flag a host without importing the reaper and the
reconciler (`faults`), which import the queue: no import cycle among the jobs modules.
"""

from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from hosts.credentials import fingerprint
from remora_admin.audit.log import record

from . import alerts
from .models import Alert, JobRun


def trust_host_key(
    host: Any, key: str, *, actor: Any, request: HttpRequest | None = None, how: str = ""
) -> str:
    """Pin `key` ("type base64") as the host's key, trusted by `actor`, and audit it. The
    caller has compared it out of band (a person with the fingerprint; the demo set-up with the
    lab's own record). Returns the fingerprint."""
    offered = fingerprint(key)
    with transaction.atomic():
        before = (
            type(host).objects.filter(pk=host.pk).values_list("host_key_fingerprint", flat=True)[0]
        )
        type(host).objects.filter(pk=host.pk).update(
            host_key=key,
            host_key_fingerprint=offered,
            host_key_trusted_by=actor,
            host_key_trusted_at=timezone.now(),
            host_key_alert="",
        )
        details = {"before": {"fingerprint": before}, "after": {"fingerprint": offered}}
        if how:
            details["how"] = how
        record(
            "host.host_key_trusted",
            request=request,
            actor=actor,
            target=host,
            zone=host.zone.name,
            details=details,
        )
        alerts.clear(f"host_key:{host.pk}", f"{actor} trusted {offered}")
    return offered


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
        alerts.raise_alert(
            Alert.Kind.HOST_KEY,
            f"host_key:{host.pk}",
            f"{host.name} presented a host key other than the pinned one",
            f"Pinned {host.host_key_fingerprint}, seen {fingerprint(seen_key)}. Nothing connects "
            "to it until a zone admin compares the key out of band and trusts the right one.",
            host=host,
        )
