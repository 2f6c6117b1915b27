"""Host keys: scan a host's key, and trust it (a zone admin, in sudo mode, audited).

A scan opens a TCP connection to whatever address the host has, so it works as a port probe:
every scan is audited, failed ones too (with the address, port and error), and each person
may scan only so often (SCAN_LIMIT per SCAN_WINDOW, counted from those audit events, so the
limit holds across processes and restarts)."""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from hosts.credentials import fingerprint
from hosts.models import Host
from remora_admin.access.guards import get_for_user
from remora_admin.access.policy import Action
from remora_admin.access.sudo import sudo_required
from remora_admin.audit.log import record
from remora_admin.audit.models import AuditEvent

from . import ssh
from .hostkeys import trust_host_key

SCAN_LIMIT = getattr(settings, "REMORA_KEY_SCAN_LIMIT", 10)
SCAN_WINDOW = timedelta(seconds=getattr(settings, "REMORA_KEY_SCAN_WINDOW", 600))
SCANS = ("host.host_key_scanned", "host.host_key_scan_failed")


def _host(request: HttpRequest, name: str) -> Host:
    return get_for_user(
        request, Host.objects.select_related("zone"), Action.TRUST_HOST_KEY, name=name
    )


def scan_wait(user) -> timedelta | None:
    """How long `user` must wait before scanning again; None when they may scan now."""
    since = timezone.now() - SCAN_WINDOW
    recent = list(
        AuditEvent.objects.filter(actor=user, action__in=SCANS, occurred_at__gte=since)
        .order_by("-occurred_at")
        .values_list("occurred_at", flat=True)[:SCAN_LIMIT]
    )
    if len(recent) < SCAN_LIMIT:
        return None
    # A slot frees when the oldest of the last SCAN_LIMIT scans leaves the window.
    return max(recent[-1] + SCAN_WINDOW - timezone.now(), timedelta(seconds=1))


def _in_words(wait: timedelta) -> str:
    minutes, seconds = divmod(int(wait.total_seconds() + 0.999), 60)
    if minutes and seconds:
        return f"{minutes} min {seconds} s"
    return f"{minutes} min" if minutes else f"{seconds} s"


@require_POST
@login_required
def scan_key(request: HttpRequest, name: str) -> HttpResponse:
    host = _host(request, name)
    where = {"address": host.address, "port": host.ssh_port}
    wait = scan_wait(request.user)
    if wait is not None:
        record(
            "host.host_key_scan_refused",
            request=request,
            target=host,
            zone=host.zone.name,
            details={
                **where,
                "reason": "rate_limited",
                "retry_after_seconds": int(wait.total_seconds()),
            },
        )
        minutes = int(SCAN_WINDOW.total_seconds() // 60)
        at = timezone.now() + wait
        messages.error(
            request,
            f"You have scanned {SCAN_LIMIT} times in the last {minutes} minutes, the most "
            f"allowed; try again in {_in_words(wait)} (at {at:%H:%M:%S} UTC).",
        )
        return redirect(host)
    try:
        seen = ssh.scan_host_key(host.address, host.ssh_port)
    except ssh.SSHFailure as failure:
        record(
            "host.host_key_scan_failed",
            request=request,
            target=host,
            zone=host.zone.name,
            details={**where, "kind": failure.kind, "error": str(failure)},
        )
        messages.error(request, f"Scan failed: {failure}")
        return redirect(host)
    seen_fp = fingerprint(seen)
    with transaction.atomic():
        Host.objects.filter(pk=host.pk).update(
            seen_host_key=seen, seen_host_key_fingerprint=seen_fp
        )
        record(
            "host.host_key_scanned",
            request=request,
            target=host,
            zone=host.zone.name,
            details={**where, "seen": seen_fp, "pinned": host.host_key_fingerprint},
        )
    if seen == host.host_key:
        messages.success(request, f"The host presents the trusted key {seen_fp}.")
    else:
        messages.info(
            request, f"The host presents {seen_fp}. Compare it out of band, then trust it."
        )
    return redirect(host)


@require_POST
@login_required
@sudo_required
def trust_key(request: HttpRequest, name: str) -> HttpResponse:
    host = _host(request, name)
    offered = request.POST.get("fingerprint", "")
    if not host.seen_host_key or offered != host.seen_host_key_fingerprint:
        messages.error(request, "The key changed since you looked at it; scan again and compare.")
        return redirect(host)
    trust_host_key(host, host.seen_host_key, actor=request.user, request=request)
    messages.success(request, f"{host.name}'s key {offered} is trusted; connections pin it.")
    return redirect(host)
