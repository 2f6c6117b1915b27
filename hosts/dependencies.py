"""The seed's reliability question, per growth phase: which hosts does a.sl.o need, and what
stops working when one host is down?

The site answers when a load balancer answers (Perlbal; with a failover pair the surviving
Perlbal takes the floating address), one of its PHP front ends is up, the MySQL master takes the
writes and the NFS server serves the data files. Reads go to the shadow database when a replica
exists: losing it breaks reads until the front ends' SHADOW_DB settings point at the master.
"""

from dataclasses import dataclass, field

from .models import GrowthPhase, ServiceKind

K = ServiceKind


@dataclass
class HostLoss:
    host: str
    stops_site: bool
    sentence: str
    lost: list[str] = field(default_factory=list)  # service kinds' labels on the host
    degrades: bool = False  # the site answers, but part of it fails until someone acts


@dataclass
class PhaseReliability:
    phase: GrowthPhase
    needed: list[str]  # hosts whose loss alone stops the site
    losses: list[HostLoss]

    @property
    def summary(self) -> str:
        if not self.needed:
            return "No single host's loss stops a.sl.o."
        names = " and ".join(self.needed)
        return f"a.sl.o needs {names}: losing {'it' if len(self.needed) == 1 else 'either'} " + (
            "stops the site."
        )


def _on(placements, kind) -> set[str]:
    return {p.host.name for p in placements if p.kind == kind}


def reliability(phase: GrowthPhase, visible: set[str] | None = None) -> PhaseReliability:
    """The answer for `phase`; told only about the hosts in `visible` (names) when given (the
    reasoning still counts every host: the site's fate does not depend on who looks)."""
    placements = list(phase.placements.select_related("host"))
    hosts = sorted({p.host.name for p in placements})
    frontends = _on(placements, K.PHP_FRONTEND)
    balancers = _on(placements, K.PERLBAL)
    monitored = bool(_on(placements, K.HEARTBEAT))
    losses = []
    for name in hosts:
        down = {name}
        missing = []
        if not _on(placements, K.MYSQL_MASTER) - down:
            missing.append("the MySQL master (every write)")
        if not _on(placements, K.NFS_SERVER) - down:
            missing.append("the NFS data files")
        if not frontends - down:
            missing.append("every PHP front end")
        surviving_balancers = balancers - down
        if not surviving_balancers or (name in balancers and not monitored):
            missing.append("the load balancer that a.sl.o's address points at")
        lost = sorted(p.get_kind_display() for p in placements if p.host.name == name)
        if missing:
            sentence = f"Losing {name} stops a.sl.o: it alone runs " + ", ".join(missing) + "."
            losses.append(HostLoss(name, True, sentence, lost))
            continue
        clauses = []
        if name in frontends:
            clauses.append(
                f"costs capacity ({len(frontends) - 1} of {len(frontends)} front ends remain)"
            )
        reads_broken = name in _on(placements, K.MYSQL_REPLICA)
        if reads_broken:
            clauses.append(
                "breaks the reads that go to the shadow database until the front ends' "
                "SHADOW_DB settings point at the master"
            )
        if name in balancers:
            clauses.append("moves the floating address to the other Perlbal (about a second)")
        if not clauses:
            clauses.append("costs nothing the site needs")
        ending = "." if reads_broken else "; the site keeps answering."
        sentence = f"Losing {name} " + "; ".join(clauses) + ending
        losses.append(HostLoss(name, False, sentence, lost, degrades=reads_broken))
    if visible is not None:
        losses = [loss for loss in losses if loss.host in visible]
    needed = [loss.host for loss in losses if loss.stops_site]
    return PhaseReliability(phase, needed, losses)
