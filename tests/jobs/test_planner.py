"""The growth planner's exact ordered steps for the seed's phases: nothing → 1, 1 → 2, 2 → 3,
each a recipe on a host with the parameters the phase decides and why it is there."""

import pytest

from hosts.models import GrowthPhase, Host
from jobs import planner

pytestmark = pytest.mark.django_db


def phase(number: int) -> GrowthPhase:
    return GrowthPhase.objects.get(number=number)


def steps(start, target) -> list[tuple[str, str]]:
    found = planner.desired(target) if start is None else planner.plan(start, target)
    return [(s.recipe, s.host.name) for s in found]


@pytest.fixture
def addressed(topology):
    for name, address in (
        ("beamrider", "10.0.0.2"),
        ("sunjammer", "10.0.0.3"),
        ("remora2", "10.0.0.4"),
    ):
        Host.objects.filter(name=name).update(service_address=address)


def test_nothing_to_phase_1_installs_the_whole_stack_on_beamrider(addressed):
    assert steps(None, phase(1)) == [
        ("mariadb_master", "beamrider"),
        ("nfs_exports", "beamrider"),
        ("php_frontend", "beamrider"),
        ("perlbal", "beamrider"),
    ]
    by_recipe = {s.recipe: s for s in planner.desired(phase(1))}
    # In Phase 1 the shadow settings point at the master, and nobody mounts the directories.
    assert by_recipe["php_frontend"].params["shadow_db_host"] == "10.0.0.2"
    assert by_recipe["php_frontend"].params["db_host"] == "10.0.0.2"
    assert by_recipe["nfs_exports"].params["clients"] == ""
    assert by_recipe["mariadb_master"].params == {
        "app_clients": "localhost 10.0.0.2",
        "replica_address": "",
    }
    assert by_recipe["perlbal"].params == {"backends": "beamrider:8080", "port": 80}
    assert set(by_recipe["php_frontend"].inputs) == {"repo_url", "ref", "app_password"}


def test_phase_1_to_2_brings_a_front_end_on_sunjammer_into_the_pool(addressed):
    found = planner.plan(phase(1), phase(2))
    assert [(s.recipe, s.host.name) for s in found] == [
        ("host_health", "sunjammer"),  # it joins the stack: it must answer first
        ("mariadb_master", "beamrider"),  # the application account may now come from sunjammer
        ("nfs_exports", "beamrider"),
        ("nfs_mount", "sunjammer"),
        ("php_frontend", "sunjammer"),
        ("perlbal_add_backend", "beamrider"),
    ]
    params = {s.recipe: s.params for s in found}
    assert params["mariadb_master"]["app_clients"] == "localhost 10.0.0.2 10.0.0.3"
    assert params["nfs_exports"] == {"clients": "sunjammer"}
    assert params["nfs_mount"] == {"server": "beamrider"}
    assert params["perlbal_add_backend"] == {"backend": "sunjammer:8080"}
    assert "Add sunjammer:8080 to beamrider's Perlbal pool" in found[-1].why


def test_phase_2_to_3_adds_the_shadow_the_second_perlbal_and_the_pair_then_switches_reads(
    addressed,
):
    found = planner.plan(phase(2), phase(3))
    assert [(s.recipe, s.host.name) for s in found] == [
        ("host_health", "remora2"),
        ("mariadb_master", "beamrider"),  # the replication account, limited to remora2
        ("mariadb_replica", "remora2"),
        ("perlbal", "remora2"),
        ("failover_monitor", "beamrider"),
        ("failover_monitor", "remora2"),
        ("php_frontend", "beamrider"),  # reads to the shadow, last
        ("php_frontend", "sunjammer"),
    ]
    master, replica = found[1], found[2]
    assert master.params["replica_address"] == "10.0.0.4"
    assert {"repl_password", "seed_password", "app_password"} <= set(master.inputs)
    assert replica.params["master_address"] == "10.0.0.2"
    pair = {s.host.name: s.params for s in found if s.recipe == "failover_monitor"}
    assert pair == {
        "beamrider": {"role": "MASTER", "peer": "remora2"},
        "remora2": {"role": "BACKUP", "peer": "beamrider"},
    }
    for front in found[-2:]:
        assert front.params["shadow_db_host"] == "10.0.0.4"
        assert front.params["db_host"] == "10.0.0.2"
        assert "reads to the shadow database" in front.why
    names = [i.name for i in planner.inputs_needed(found)]
    assert names == ["repo_url", "ref", "app_password", "repl_password", "seed_password",
                     "floating_address"]  # fmt: skip


def test_a_phase_compared_with_itself_needs_nothing(addressed):
    assert planner.plan(phase(2), phase(2)) == []


def test_a_pool_that_loses_a_front_end_is_rewritten_whole(addressed):
    placement = phase(2).placements.get(kind="perlbal")
    placement.settings = {"backends": ["sunjammer:8080"]}
    placement.save()
    found = planner.plan(phase(1), phase(2))
    pool = [s for s in found if s.recipe.startswith("perlbal")]
    assert [(s.recipe, s.params["backends"]) for s in pool] == [("perlbal", "sunjammer:8080")]


def test_the_phase_settings_propose_the_inputs_and_the_picture_shows_the_floating_address(
    addressed,
):
    from hosts.diagram import topology as draw

    heartbeat = phase(3).placements.get(kind="heartbeat")
    heartbeat.settings = {**heartbeat.settings, "floating_address": "10.0.0.100/24"}
    heartbeat.save()
    front = phase(3).placements.get(kind="php_frontend", host__name="sunjammer")
    front.settings = {"repo_url": "https://git.example.org/remora.git", "ref": "v2"}
    front.save()

    assert planner.proposals(phase(3)) == {
        "floating_address": "10.0.0.100/24",
        "repo_url": "https://git.example.org/remora.git",
        "ref": "v2",
    }
    assert planner.proposals(phase(1)) == {}
    labels = [b.label for c in draw(phase(3)).columns for b in c.boxes]
    assert "Failover · 10.0.0.100" in labels
