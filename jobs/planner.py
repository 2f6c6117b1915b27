"""The growth-phase planner: what it takes to move the stack from one phase to the next.

Each phase's placements say which service runs where; `desired(phase)` turns them into the
provisioning steps that make that phase true on the hosts, each a recipe with its parameters
(only what the phase decides: the addresses of the other services, the pool, the clients; the
rest the recipe's form proposes from the inventory). The plan from one phase to the next is the
target's steps that the current phase does not already have with the same parameters, in the
order the stack needs them: the database first, then the data directories, the front ends, the
pool, the failover pair, and reads switched to the shadow last. Whether a step is already
satisfied is asked of the host (the recipe's status companion) when the batch reaches it.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from hosts.models import GrowthPhase, Host, Placement, ServiceKind

K = ServiceKind

# The order steps run in; a lower rank first, then by host name.
RANK = {
    "host_health": 0,
    "mariadb_master": 1,
    "mariadb_replica": 2,
    "nfs_exports": 3,
    "nfs_mount": 4,
    "php_frontend": 5,
    "perlbal": 6,
    "perlbal_add_backend": 6,
    "failover_monitor": 7,
}
SWITCH_READS_RANK = 8  # an existing front end whose reads move to the shadow: last


@dataclass(frozen=True)
class Input:
    name: str
    label: str
    help: str
    secret: bool = False
    initial: str = ""


# What a plan may ask of the person applying it, beyond the inventory.
INPUTS = {
    i.name: i
    for i in (
        Input("repo_url", "Application git URL", "Where the PHP front ends deploy Remora from."),
        Input("ref", "Git ref", "The branch, tag or commit to deploy.", initial="main"),
        Input(
            "app_password",
            "Application database password",
            "The password of the application's database account (the master and the shadow).",
            secret=True,
        ),
        Input(
            "repl_password",
            "Replication password",
            "The replication account's password (the shadow database signs in to the master).",
            secret=True,
        ),
        Input(
            "seed_password",
            "Seed password",
            "The account that takes the consistent snapshot the shadow database starts from.",
            secret=True,
        ),
        Input(
            "floating_address",
            "Floating address",
            "The service address the failover pair holds, with its prefix (e.g. 10.0.0.100/24).",
        ),
    )
}

# Which inputs each recipe takes, and under which parameter name.
RECIPE_INPUTS: dict[str, dict[str, str]] = {
    "php_frontend": {"repo_url": "repo_url", "ref": "ref", "app_password": "db_password"},
    "mariadb_master": {"app_password": "app_password"},
    "mariadb_replica": {
        "app_password": "app_password",
        "repl_password": "repl_password",
        "seed_password": "seed_password",
    },
    "failover_monitor": {"floating_address": "floating_address"},
}


@dataclass
class Step:
    recipe: str
    host: Host
    params: dict[str, Any]
    why: str
    rank: int = 0
    inputs: dict[str, str] = field(default_factory=dict)  # input name -> parameter name

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.recipe, self.host.pk, json.dumps(self.params, sort_keys=True))


class Layout:
    """Who runs what in one phase."""

    def __init__(self, placements: list[Placement]):
        self.placements = placements
        self.by_kind: dict[str, list[Placement]] = {}
        for p in sorted(placements, key=lambda p: p.host.name):
            self.by_kind.setdefault(p.kind, []).append(p)

    def hosts(self, kind: str) -> list[Host]:
        return [p.host for p in self.by_kind.get(kind, [])]

    def first(self, kind: str) -> Host | None:
        hosts = self.hosts(kind)
        return hosts[0] if hosts else None

    def all_hosts(self) -> set[int]:
        return {p.host_id for p in self.placements}


def _names(hosts: list[Host]) -> str:
    return ", ".join(h.name for h in hosts) or "no one"


def _steps_for(p: Placement, layout: Layout) -> list[Step]:
    host, settings = p.host, {**p.settings}
    master, replica = layout.first(K.MYSQL_MASTER), layout.first(K.MYSQL_REPLICA)
    fronts = layout.hosts(K.PHP_FRONTEND)
    clients = " ".join(["localhost", *(f.reach_address for f in fronts)])
    if p.kind == K.MYSQL_MASTER:
        params = {
            "app_clients": clients,
            "replica_address": replica.reach_address if replica else "",
        }
        inputs = dict(RECIPE_INPUTS["mariadb_master"])
        why = f"The master database: the application writes here from {_names(fronts)}"
        if replica:
            inputs.update(RECIPE_INPUTS["mariadb_replica"])
            why += f"; {replica.name} replicates from it"
        return [Step("mariadb_master", host, params, why + ".", inputs=inputs)]
    if p.kind == K.MYSQL_REPLICA and master is not None:
        params = {"master_address": master.reach_address, "app_clients": clients}
        why = (
            f"The shadow database: a replica of {master.name}'s, seeded from a consistent "
            "snapshot, that serves the application's reads."
        )
        return [Step("mariadb_replica", host, params, why, inputs=RECIPE_INPUTS["mariadb_replica"])]
    if p.kind == K.NFS_SERVER:
        others = [f for f in fronts if f.pk != host.pk]
        why = (
            f"The data directories, exported read-write to {_names(others)} only."
            if others
            else "The data directories, on this host's own disk; exported to no one yet."
        )
        return [Step("nfs_exports", host, {"clients": "\n".join(h.name for h in others)}, why)]
    if p.kind == K.PHP_FRONTEND and master is not None:
        steps = []
        nfs = layout.first(K.NFS_SERVER)
        if nfs is not None and nfs.pk != host.pk:
            why = f"The data directories from {nfs.name}, mounted where the application expects."
            steps.append(Step("nfs_mount", host, {"server": nfs.name}, why))
        shadow = replica or master
        params = {
            "db_host": master.reach_address,
            "shadow_db_host": shadow.reach_address,
            "port": settings.get("port", 8080),
        }
        why = f"A PHP front end: writes to {master.name}, reads from {shadow.name}."
        steps.append(Step("php_frontend", host, params, why, inputs=RECIPE_INPUTS["php_frontend"]))
        return steps
    if p.kind == K.PERLBAL:
        backends = list(settings.get("backends", []))
        params = {"backends": ", ".join(backends), "port": settings.get("port", 80)}
        why = f"The load balancer over {', '.join(backends) or 'no front end yet'}."
        return [Step("perlbal", host, params, why)]
    if p.kind == K.HEARTBEAT:
        pair = layout.hosts(K.PERLBAL)
        steps = []
        for member in pair:
            peer = next((h for h in pair if h.pk != member.pk), None)
            role = "MASTER" if master is not None and member.pk == master.pk else "BACKUP"
            params = {"role": role, "peer": peer.name if peer else ""}
            why = (
                f"The failover pair ({_names(pair)}): {member.name} as {role} of the floating "
                "address, which moves when its Perlbal stops answering."
            )
            inputs = RECIPE_INPUTS["failover_monitor"]
            steps.append(Step("failover_monitor", member, params, why, inputs=inputs))
        return steps
    return []


def _placements(phase: GrowthPhase | None) -> list[Placement]:
    if phase is None:
        return []
    return list(phase.placements.select_related("host__zone").order_by("host__name", "kind"))


def desired(phase: GrowthPhase | None) -> list[Step]:
    """Every step that makes `phase` true on its hosts, in order."""
    layout = Layout(_placements(phase))
    steps = [step for p in layout.placements for step in _steps_for(p, layout)]
    for step in steps:
        step.rank = RANK[step.recipe]
    return sorted(steps, key=lambda s: (s.rank, s.host.name))


def _prepare(host: Host) -> Step:
    why = (
        f"Prepare {host.name}: it joins the stack in this phase; it must answer over SSH with "
        "its trusted key and have room."
    )
    return Step("host_health", host, {}, why)


def _pool_additions(old: Step | None, step: Step) -> list[Step] | None:
    """A pool that only gains front ends grows live, one `perlbal_add_backend` each (nothing
    restarts); None when the pool must be rewritten whole."""
    if old is None or old.params.get("port") != step.params.get("port"):
        return None
    kept = [b for b in old.params["backends"].split(", ") if b]
    wanted = [b for b in step.params["backends"].split(", ") if b]
    if not set(kept) <= set(wanted):
        return None
    why = "Add {} to {}'s Perlbal pool, live."
    return [
        Step("perlbal_add_backend", step.host, {"backend": b}, why.format(b, step.host.name))
        for b in wanted
        if b not in kept
    ]


def plan(current: GrowthPhase | None, target: GrowthPhase) -> list[Step]:
    """The ordered steps from `current` (None: fresh hosts) to `target`: those of the target
    that the current phase does not already have with the same parameters."""
    before = desired(current)
    had = {s.key for s in before}
    pools = {s.host.pk: s for s in before if s.recipe == "perlbal"}
    new_hosts = Layout(_placements(target)).all_hosts() - Layout(_placements(current)).all_hosts()
    steps: list[Step] = []
    if current is not None:  # hosts the stack did not use yet must answer first
        joining = {p.host_id: p.host for p in _placements(target) if p.host_id in new_hosts}
        steps += [_prepare(host) for host in joining.values()]
    for step in desired(target):
        if step.key in had:
            continue
        if step.recipe == "perlbal":
            additions = _pool_additions(pools.get(step.host.pk), step)
            if additions is not None:
                steps += additions
                continue
        if step.recipe == "php_frontend" and step.host.pk not in new_hosts:
            was = next((s for s in before if s.key[:2] == ("php_frontend", step.host.pk)), None)
            if was is not None and was.params["shadow_db_host"] != step.params["shadow_db_host"]:
                step.rank = SWITCH_READS_RANK
                step.why = (
                    f"Switch {step.host.name}'s reads to the shadow database; writes stay on "
                    "the master."
                )
        steps.append(step)
    for step in steps:
        step.rank = step.rank if step.rank == SWITCH_READS_RANK else RANK[step.recipe]
    return sorted(steps, key=lambda s: (s.rank, s.host.name))


def proposals(phase: GrowthPhase | None) -> dict[str, str]:
    """What the phase's own settings already say of the inputs (a front end's git URL and ref,
    the failover pair's floating address): the Plan page offers them."""
    found: dict[str, str] = {}
    for p in _placements(phase):
        if p.kind == K.PHP_FRONTEND:
            found.update({k: str(p.settings[k]) for k in ("repo_url", "ref") if p.settings.get(k)})
        if p.kind == K.HEARTBEAT and p.settings.get("floating_address"):
            found["floating_address"] = str(p.settings["floating_address"])
    return found


def inputs_needed(steps: list[Step]) -> list[Input]:
    names = {name for step in steps for name in step.inputs}
    return [i for i in INPUTS.values() if i.name in names]
