"""Host keys: scan a host's key, and trust it (a zone admin, in sudo mode, audited)."""

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

from . import ssh


def _host(request: HttpRequest, name: str) -> Host:
    return get_for_user(
        request, Host.objects.select_related("zone"), Action.TRUST_HOST_KEY, name=name
    )


@require_POST
@login_required
def scan_key(request: HttpRequest, name: str) -> HttpResponse:
    host = _host(request, name)
    try:
        seen = ssh.scan_host_key(host.address, host.ssh_port)
    except ssh.SSHFailure as failure:
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
            details={"seen": seen_fp, "pinned": host.host_key_fingerprint},
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
    with transaction.atomic():
        before = host.host_key_fingerprint
        Host.objects.filter(pk=host.pk).update(
            host_key=host.seen_host_key,
            host_key_fingerprint=host.seen_host_key_fingerprint,
            host_key_trusted_by=request.user,
            host_key_trusted_at=timezone.now(),
            host_key_alert="",
        )
        record(
            "host.host_key_trusted",
            request=request,
            target=host,
            zone=host.zone.name,
            details={"before": {"fingerprint": before}, "after": {"fingerprint": offered}},
        )
    messages.success(request, f"{host.name}'s key {offered} is trusted; connections pin it.")
    return redirect(host)
