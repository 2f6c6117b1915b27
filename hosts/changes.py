"""Every change to the inventory goes through here, with its audit event in the same transaction."""

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.http import HttpRequest
from django.utils import timezone

from remora_admin.access.models import Zone
from remora_admin.audit.log import record

from .models import GrowthPhase, Host, Placement, Service


def snapshot(obj: models.Model) -> dict[str, Any]:
    """The object's own field values as JSON-safe data (foreign keys by id)."""
    data = {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def zone_of(obj: models.Model) -> str:
    if isinstance(obj, Zone):
        return obj.name
    if isinstance(obj, Host):
        return obj.zone.name
    if isinstance(obj, Service | Placement):
        return obj.host.zone.name
    return ""


def _action(obj: models.Model, verb: str) -> str:
    return f"{obj._meta.model_name}.{verb}"


def save_audited(
    obj: models.Model, *, request: HttpRequest | None = None, actor: Any = None
) -> bool:
    """Validate and save `obj`, recording what changed. Returns False when nothing changed."""
    obj.full_clean()
    with transaction.atomic():
        before = None
        if obj.pk is not None:
            current = type(obj).objects.select_for_update().filter(pk=obj.pk).first()
            before = snapshot(current) if current is not None else None
        after = snapshot(obj)
        if before == after:
            return False
        obj.save()
        after = snapshot(obj)
        if before is None:
            details: dict[str, Any] = {"after": after}
        else:
            changed = sorted(k for k in after if before.get(k) != after.get(k))
            details = {
                "before": {k: before.get(k) for k in changed},
                "after": {k: after[k] for k in changed},
            }
        verb = "created" if before is None else "updated"
        record(
            _action(obj, verb),
            request=request,
            actor=actor,
            target=obj,
            zone=zone_of(obj),
            details=details,
        )
    return True


def delete_audited(obj: models.Model, *, request: HttpRequest | None = None, actor: Any = None):
    with transaction.atomic():
        before = snapshot(obj)
        zone = zone_of(obj)
        record(
            _action(obj, "deleted"),
            request=request,
            actor=actor,
            target=obj,
            zone=zone,
            details={"before": before},
        )
        obj.delete()


def make_current(phase: GrowthPhase, *, request: HttpRequest | None = None, actor: Any = None):
    """Mark `phase` as the stack's current growth phase (exactly one is current)."""
    with transaction.atomic():
        previous = GrowthPhase.objects.select_for_update().filter(is_current=True).first()
        if previous is not None and previous.pk == phase.pk:
            return
        GrowthPhase.objects.filter(is_current=True).update(is_current=None)
        GrowthPhase.objects.filter(pk=phase.pk).update(is_current=True)
        phase.is_current = True
        record(
            "growthphase.made_current",
            request=request,
            actor=actor,
            target=phase,
            details={
                "before": {"current": previous.number if previous else None},
                "after": {"current": phase.number},
            },
        )


def sync_services(phase: GrowthPhase, *, request: HttpRequest | None = None, actor: Any = None):
    """The services of `phase` exist, with its placements' settings (audited per change);
    services it does not place are left alone. Returns how many were created or updated."""
    changed = 0
    with transaction.atomic():
        for placement in phase.placements.select_related("host__zone"):
            service = Service.objects.filter(host=placement.host, kind=placement.kind).first()
            if service is None:
                service = Service(host=placement.host, kind=placement.kind)
            service.settings = {**service.settings, **placement.settings}
            changed += save_audited(service, request=request, actor=actor)
    return changed


def record_check(service: Service, state: str, note: str, failures: int, **details: Any) -> bool:
    """What a health check found: the service's state, when it was checked, what it said and
    how many checks in a row failed. A change of state is audited (a confirmation is not).
    Returns whether the state changed. Call inside the caller's transaction, the service row
    locked (select_for_update)."""
    now = timezone.now()
    changed = state != service.state
    Service.objects.filter(pk=service.pk).update(
        state=state,
        state_changed_at=now if changed else service.state_changed_at,
        last_checked_at=now,
        check_note=note[:300],
        check_failures=failures,
    )
    if changed:
        record(
            "service.state_changed",
            actor_name="health check",
            target=service,
            zone=service.host.zone.name,
            details={"before": service.state, "after": state, "said": note,
                     "failures_in_a_row": failures, **details},
        )  # fmt: skip
    return changed
