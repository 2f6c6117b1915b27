"""Health check results become the services' states, damped against flapping.

A `service_health` run that ends updates its service: healthy → running (and its alert, if any,
clears); unhealthy → degraded at once, failed (with one alert and one e-mail) only after
`REMORA_CHECK_FAILURES` checks in a row have failed, so a single blip alerts nobody. A change of
state is audited (hosts.changes.record_check); a check that only confirms the state is recorded
on the service (the time of the last check and what it said), not in the audit log.
"""

from django.conf import settings
from django.db import transaction

from hosts.changes import record_check
from hosts.models import Service

from . import alerts
from .models import FINISHED, Alert, JobRun, RunState

RECIPE = "service_health"


def _said(run: JobRun) -> str:
    text = b"".join(bytes(c.data) for c in run.chunks.order_by("offset", "id")).decode(
        errors="replace"
    )
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else run.error or run.get_state_display())[:300]


def record_result(run: JobRun) -> None:
    if run.recipe != RECIPE or run.state not in FINISHED or run.dry_run:
        return
    service = Service.objects.filter(host=run.host, kind=run.params.get("service")).first()
    if service is None:
        return
    healthy = run.state == RunState.SUCCEEDED
    note = _said(run)
    limit = settings.REMORA_CHECK_FAILURES
    with transaction.atomic():
        service = Service.objects.select_for_update().get(pk=service.pk)
        failures = 0 if healthy else service.check_failures + 1
        if healthy:
            state = Service.State.RUNNING
        else:
            state = Service.State.FAILED if failures >= limit else Service.State.DEGRADED
        record_check(service, state, note, failures, run=run.pk)
        key = f"check:{service.host_id}:{service.kind}"
        if healthy:
            alerts.clear(key, note)
        elif failures >= limit:
            alerts.raise_alert(
                Alert.Kind.CHECK,
                key,
                f"{service.get_kind_display()} on {service.host.name} is failing",
                f"{failures} checks in a row failed; the last (run #{run.pk}) said: {note}",
                host=service.host,
            )
