"""The topology picture's dependencies and states: front ends write to the master and read from
the shadow (the master itself until there is one), take their data files from the NFS server on
another host; Perlbal sends traffic to the front ends; each service box carries its last known
state, and a service not installed yet has none."""

import pytest

from hosts.diagram import topology as draw
from hosts.models import GrowthPhase, Service

pytestmark = pytest.mark.django_db


def edges(number: int) -> set[tuple[str, str]]:
    diagram = draw(GrowthPhase.objects.get(number=number))
    boxes = {(b.x, b.y + 17): (b.host, b.kind) for c in diagram.columns for b in c.boxes}
    found = set()
    for edge in diagram.edges:
        start = next(
            (key for (x, y), key in boxes.items()
             if y == edge.points[0][1] and x <= edge.points[0][0] <= x + 160), None,
        )  # fmt: skip
        found.add((f"{start[0]}:{start[1]}" if start else "?", edge.kind))
    return found


def test_phase_1_front_end_reads_and_writes_the_local_master_and_needs_no_nfs_mount(topology):
    kinds = {kind for _, kind in edges(1)}
    assert kinds == {"traffic", "database"}


def test_phase_3_front_ends_write_to_the_master_read_from_the_shadow_and_mount_the_files(
    topology,
):
    found = edges(3)
    assert ("sunjammer:php_frontend", "writes") in found
    assert ("sunjammer:php_frontend", "reads") in found
    assert ("sunjammer:php_frontend", "files") in found
    assert ("beamrider:php_frontend", "reads") in found
    assert ("beamrider:php_frontend", "files") not in found  # its own disk
    assert ("remora2:mysql_replica", "replication") in found
    assert {kind for _, kind in found} >= {"traffic", "watch"}


def test_each_box_carries_its_services_last_known_state(topology):
    Service.objects.filter(host__name="beamrider", kind="mysql_master").update(state="running")
    boxes = {(b.host, b.kind): b for c in diagram_of(3).columns for b in c.boxes}
    assert boxes[("beamrider", "mysql_master")].state == "running"
    assert boxes[("beamrider", "php_frontend")].state == "unknown"
    assert boxes[("remora2", "mysql_replica")].state == ""  # not installed yet
    assert boxes[("remora2", "mysql_replica")].state_label == "not installed yet"


def diagram_of(number: int):
    return draw(GrowthPhase.objects.get(number=number))
