"""The Remora stack as the beamrider plan describes it, and the code that loads it idempotently.

Only what the plan says: everything on beamrider first; then a PHP front end on sunjammer; then
a second Remora machine with a replica ("shadow") database, a Perlbal and a heartbeat monitor.
"""

from typing import Any

from django.db import transaction

from remora_admin.access.models import Zone

from .changes import make_current, save_audited
from .models import GrowthPhase, Host, Placement, Service, ServiceKind

K = ServiceKind

ZONES = [
    {
        "name": "beamrider",
        "sensitivity": Zone.Sensitivity.RESTRICTED,
        "description": "The Remora stack's own machines. Few people, strong controls.",
        "requires_approval": True,
    },
    {
        "name": "sunjammer",
        "sensitivity": Zone.Sensitivity.STANDARD,
        "description": "The community machine shared by many people and projects.",
    },
]

HOSTS = [
    {
        "name": "beamrider",
        "address": "beamrider.sugarlabs.org",
        "zone": "beamrider",
        "active": True,
        "description": "Runs the whole Remora stack (a.sl.o) on a clean OS install.",
    },
    {
        "name": "sunjammer",
        "address": "sunjammer.sugarlabs.org",
        "zone": "sunjammer",
        "active": True,
        "description": "The community machine; takes a PHP front end as load grows.",
    },
    {
        "name": "remora2",
        "address": "remora2.sugarlabs.org",
        "zone": "beamrider",
        "active": False,
        "description": "The planned second Remora machine (replica database, Perlbal, heartbeat).",
    },
]

PHP_BEAMRIDER = "beamrider:8080"
PHP_SUNJAMMER = "sunjammer:8080"

PHASES: list[dict[str, Any]] = [
    {
        "number": 1,
        "name": "Entire load on beamrider",
        "description": "The whole Remora stack on one machine, so a.sl.o works when only "
        "beamrider is up.",
        "placements": [
            ("beamrider", K.MYSQL_MASTER, {}),
            ("beamrider", K.NFS_SERVER, {}),
            ("beamrider", K.PHP_FRONTEND, {}),
            ("beamrider", K.PERLBAL, {"backends": [PHP_BEAMRIDER]}),
        ],
    },
    {
        "number": 2,
        "name": "A PHP front end on sunjammer",
        "description": "As load grows, a second PHP front end (the CPU hog) runs on sunjammer.",
        "placements": [
            ("beamrider", K.MYSQL_MASTER, {}),
            ("beamrider", K.NFS_SERVER, {}),
            ("beamrider", K.PHP_FRONTEND, {}),
            ("beamrider", K.PERLBAL, {"backends": [PHP_BEAMRIDER, PHP_SUNJAMMER]}),
            ("sunjammer", K.PHP_FRONTEND, {}),
        ],
    },
    {
        "number": 3,
        "name": "A second Remora machine",
        "description": "After outgrowing beamrider and sunjammer: a second Remora machine with "
        "a replica database and a Perlbal set up as load balancer and heartbeat monitor.",
        "placements": [
            ("beamrider", K.MYSQL_MASTER, {}),
            ("beamrider", K.NFS_SERVER, {}),
            ("beamrider", K.PHP_FRONTEND, {}),
            ("beamrider", K.PERLBAL, {"backends": [PHP_BEAMRIDER, PHP_SUNJAMMER]}),
            ("sunjammer", K.PHP_FRONTEND, {}),
            ("remora2", K.MYSQL_REPLICA, {"replicates_from": "beamrider"}),
            ("remora2", K.PERLBAL, {"backends": [PHP_BEAMRIDER, PHP_SUNJAMMER]}),
            ("remora2", K.HEARTBEAT, {"watches": ["beamrider:80", "remora2:80"]}),
        ],
    },
]

CURRENT_PHASE = 1


def _ensure(model, lookup: dict[str, Any], values: dict[str, Any], counts: dict[str, int]):
    """The row named by `lookup`, created with `values` if missing. An existing row is left as
    it is: people edit the inventory (a host's address, its SSH port) and reloading the seed
    (every `make run`) must not undo their work."""
    obj = model.objects.filter(**lookup).first()
    if obj is not None:
        return obj
    obj = model(**lookup, **values)
    save_audited(obj)
    counts[model._meta.model_name] = counts.get(model._meta.model_name, 0) + 1
    return obj


def load_topology() -> dict[str, int]:
    """Create what is missing of the seed topology. Returns how many rows of each kind it made."""
    counts: dict[str, int] = {}
    with transaction.atomic():
        zones = {}
        for z in ZONES:
            zones[z["name"]] = _ensure(
                Zone, {"name": z["name"]}, {k: v for k, v in z.items() if k != "name"}, counts
            )
        hosts = {}
        for h in HOSTS:
            values = {k: v for k, v in h.items() if k != "name"}
            values["zone"] = zones[h["zone"]]
            hosts[h["name"]] = _ensure(Host, {"name": h["name"]}, values, counts)
        for p in PHASES:
            phase = _ensure(
                GrowthPhase,
                {"number": p["number"]},
                {"name": p["name"], "description": p["description"]},
                counts,
            )
            for host_name, kind, settings in p["placements"]:
                _ensure(
                    Placement,
                    {"phase": phase, "host": hosts[host_name], "kind": kind},
                    {"settings": settings},
                    counts,
                )
            if p["number"] == CURRENT_PHASE:
                current = phase
        if not GrowthPhase.objects.filter(is_current=True).exists():
            make_current(current)
            counts["current phase"] = 1
        # The services of the current phase exist; their state is unknown until checked.
        for placement in current.placements.select_related("host"):
            if not Service.objects.filter(host=placement.host, kind=placement.kind).exists():
                service = Service(host=placement.host, kind=placement.kind)
                service.settings = placement.settings
                save_audited(service)
                counts["service"] = counts.get("service", 0) + 1
    return counts
