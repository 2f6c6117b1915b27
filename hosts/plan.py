"""What a growth phase changes: the difference between two phases' placements."""

from dataclasses import dataclass, field

from .models import GrowthPhase, Placement


@dataclass
class PhaseStep:
    phase: GrowthPhase
    added: list[Placement] = field(default_factory=list)
    reconfigured: list[Placement] = field(default_factory=list)
    removed: list[Placement] = field(default_factory=list)


def diff(
    before: GrowthPhase | None, after: GrowthPhase, hosts: set[str] | None = None
) -> PhaseStep:
    """What `after` changes compared with `before`, limited to `hosts` (names) when given."""

    def placements(phase: GrowthPhase) -> list[Placement]:
        return [p for p in phase.placements.all() if hosts is None or p.host.name in hosts]

    old = {(p.host_id, p.kind): p for p in placements(before)} if before else {}
    step = PhaseStep(after)
    new_keys = set()
    for placement in placements(after):
        key = (placement.host_id, placement.kind)
        new_keys.add(key)
        if key not in old:
            step.added.append(placement)
        elif old[key].settings != placement.settings:
            step.reconfigured.append(placement)
    step.removed = [p for key, p in old.items() if key not in new_keys]
    return step


def phases_with_steps(hosts: set[str] | None = None) -> list[PhaseStep]:
    """Every phase in order, each with what it changes compared with the one before."""
    phases = list(GrowthPhase.objects.prefetch_related("placements__host"))
    return [diff(phases[i - 1] if i else None, phase, hosts) for i, phase in enumerate(phases)]


def next_phase_additions(
    current: GrowthPhase | None, hosts: set[str] | None = None
) -> PhaseStep | None:
    following = GrowthPhase.objects.filter(
        number__gt=current.number if current else -1
    ).prefetch_related("placements__host")
    nxt = following.first()
    if nxt is None:
        return None
    if current is not None:
        current = GrowthPhase.objects.prefetch_related("placements__host").get(pk=current.pk)
    return diff(current, nxt, hosts)
