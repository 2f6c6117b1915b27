"""The "who can control each host" report: access's zone report joined to the inventory."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from hosts.models import Host
from remora_admin.access.guards import requires
from remora_admin.access.policy import Action, scope, zones_where
from remora_admin.access.report import CAPABILITIES, zone_access
from remora_admin.audit.export import csv_writer
from remora_admin.audit.log import record


def _rows(request: HttpRequest):
    zones = list(zones_where(request.user, Action.VIEW_ACCESS_REPORT))
    by_zone = {za.zone.pk: za for za in zone_access(zones, default_limit=_limit())}
    hosts = scope(Host.objects.select_related("zone"), request.user, Action.VIEW_ACCESS_REPORT)
    return [(host, by_zone[host.zone_id]) for host in hosts if host.zone_id in by_zone]


def _limit() -> int:
    return settings.REMORA_RESTRICTED_CONTROLLER_LIMIT


@requires(Action.VIEW_ACCESS_REPORT)
def access_report(request: HttpRequest) -> HttpResponse:
    context = {"rows": _rows(request), "capabilities": [c for c, _ in CAPABILITIES]}
    return render(request, "access/report.html", context)


@requires(Action.VIEW_ACCESS_REPORT)
def access_report_csv(request: HttpRequest) -> HttpResponse:
    rows = _rows(request)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="remora-access-{stamp}.csv"'
    writer = csv_writer(response)
    writer.writerow(
        [
            "host",
            "zone",
            "sensitivity",
            "person",
            *[c for c, _ in CAPABILITIES],
            "roles",
            "grants",
            "until",
            "two_factor",
        ]
    )
    count = 0
    for host, za in rows:
        for h in za.holders:
            grants = "; ".join(
                f"{g.get_role_display()} ({g.scope_name}) by {g.granted_by or 'system'}: {g.reason}"
                for g in h.grants
            ) or ("superuser" if h.superuser else "")
            writer.writerow(
                [
                    host.name,
                    za.zone.name,
                    za.zone.sensitivity,
                    h.user.username,
                    *["yes" if h.can(c) else "" for c, _ in CAPABILITIES],
                    ", ".join(sorted(h.roles | ({"superadmin"} if h.superuser else set()))),
                    grants,
                    h.until.isoformat() if h.until else "never",
                    "yes" if h.has_2fa else "no",
                ]
            )
            count += 1
    record("access.report_exported", request=request, details={"rows": count, "format": "csv"})
    return response
