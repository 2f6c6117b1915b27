"""The seed topology matches the beamrider plan, loads idempotently, and audits every row."""

import pytest
from django.core.exceptions import ValidationError

from hosts.changes import make_current, save_audited
from hosts.models import DEFAULT_SETTINGS, GrowthPhase, Host, Placement, Service, ServiceKind
from hosts.plan import diff
from hosts.topology import load_topology
from remora_admin.access.models import Zone
from remora_admin.audit.chain import verify_chain
from remora_admin.audit.models import AuditEvent

K = ServiceKind
DATA_DIRECTORIES = ["/srv/remora/files", "/srv/remora/public-staging"]
INVENTORY = [Zone, Host, GrowthPhase, Placement, Service]


def _targets(phase) -> set[tuple[str, str]]:
    """The (host, service kind) pairs a growth phase targets."""
    return {(p.host.name, p.kind) for p in phase.placements.all()}


def _phase(number: int) -> GrowthPhase:
    return GrowthPhase.objects.get(number=number)


def _pairs(placements) -> set[tuple[str, str]]:
    return {(p.host.name, p.kind) for p in placements}


def _effective(placement: Placement) -> dict:
    return {**DEFAULT_SETTINGS[placement.kind], **placement.settings}


def _row_counts() -> dict[str, int]:
    counts = {model.__name__: model.objects.count() for model in INVENTORY}
    counts["AuditEvent"] = AuditEvent.objects.count()
    return counts


# --- The seed ---------------------------------------------------------------------------------


def test_the_zones_are_beamrider_restricted_and_sunjammer_standard(topology):
    zones = dict(Zone.objects.values_list("name", "sensitivity"))

    assert zones == {"beamrider": "restricted", "sunjammer": "standard"}


def test_the_hosts_are_beamrider_sunjammer_and_an_inactive_remora2(topology):
    hosts = {h.name: (h.zone.name, h.active) for h in Host.objects.select_related("zone")}

    assert hosts == {
        "beamrider": ("beamrider", True),
        "sunjammer": ("sunjammer", True),
        "remora2": ("beamrider", False),
    }


def test_exactly_one_phase_is_current_and_it_is_phase_1(topology):
    assert GrowthPhase.objects.count() == 3
    assert list(GrowthPhase.objects.filter(is_current=True).values_list("number", flat=True)) == [1]


def test_phase_1_runs_the_whole_stack_on_beamrider(topology):
    phase = _phase(1)

    assert _targets(phase) == {
        ("beamrider", K.MYSQL_MASTER),
        ("beamrider", K.NFS_SERVER),
        ("beamrider", K.PHP_FRONTEND),
        ("beamrider", K.PERLBAL),
    }
    perlbal = phase.placements.get(kind=K.PERLBAL)
    assert _effective(perlbal)["backends"] == ["beamrider:8080"]
    nfs = phase.placements.get(kind=K.NFS_SERVER)
    assert _effective(nfs)["exports"] == DATA_DIRECTORIES


def test_the_nfs_server_exports_the_two_data_directories(topology):
    nfs = Service.objects.get(host__name="beamrider", kind=K.NFS_SERVER)

    assert nfs.effective_settings["exports"] == DATA_DIRECTORIES


def test_phase_2_adds_only_a_php_front_end_on_sunjammer_and_reconfigures_perlbal(topology):
    step = diff(_phase(1), _phase(2))

    assert _pairs(step.added) == {("sunjammer", K.PHP_FRONTEND)}
    assert _pairs(step.reconfigured) == {("beamrider", K.PERLBAL)}
    assert step.removed == []
    perlbal = _phase(2).placements.get(kind=K.PERLBAL)
    assert perlbal.settings["backends"] == ["beamrider:8080", "sunjammer:8080"]


def test_phase_3_adds_a_replica_perlbal_and_heartbeat_on_remora2(topology):
    step = diff(_phase(2), _phase(3))

    assert _pairs(step.added) == {
        ("remora2", K.MYSQL_REPLICA),
        ("remora2", K.PERLBAL),
        ("remora2", K.HEARTBEAT),
    }
    assert step.reconfigured == []
    assert step.removed == []


def test_the_replica_replicates_from_beamrider(topology):
    replica = _phase(3).placements.get(kind=K.MYSQL_REPLICA)

    assert replica.host.name == "remora2"
    assert _effective(replica)["replicates_from"] == "beamrider"
    master = _phase(3).placements.get(kind=K.MYSQL_MASTER)
    assert master.host.name == "beamrider"


def test_the_current_phase_services_exist(topology):
    services = {(s.host.name, s.kind): s.state for s in Service.objects.select_related("host")}

    assert set(services) == _targets(_phase(1))
    assert set(services.values()) == {Service.State.UNKNOWN}
    perlbal = Service.objects.get(host__name="beamrider", kind=K.PERLBAL)
    assert perlbal.effective_settings["backends"] == ["beamrider:8080"]


# --- Loading ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_loading_reports_what_it_created():
    counts = load_topology()

    assert counts == {
        "zone": 2,
        "host": 3,
        "growthphase": 3,
        "placement": 4 + 5 + 8,
        "current phase": 1,
        "service": 4,
    }


def test_loading_twice_creates_nothing_and_writes_no_audit_events(topology):
    before = _row_counts()

    counts = load_topology()

    assert counts == {}
    assert _row_counts() == before


def test_loading_again_keeps_what_people_changed_in_the_inventory(topology):
    host = Host.objects.get(name="sunjammer")
    host.address, host.ssh_port = "10.0.0.7", 2222
    save_audited(host)
    events_before = AuditEvent.objects.count()

    counts = load_topology()

    assert counts == {}
    host.refresh_from_db()
    assert (host.address, host.ssh_port) == ("10.0.0.7", 2222)
    assert AuditEvent.objects.count() == events_before


def test_loading_again_puts_back_what_was_deleted(topology):
    Host.objects.get(name="remora2").placements.all().delete()
    Host.objects.filter(name="remora2").delete()

    counts = load_topology()

    assert counts["host"] == 1
    assert Host.objects.filter(name="remora2", active=False).exists()


def test_every_row_the_loader_created_has_its_created_event(topology):
    for model in INVENTORY:
        action = f"{model._meta.model_name}.created"
        audited = set(AuditEvent.objects.filter(action=action).values_list("target_id", flat=True))
        assert audited == {str(pk) for pk in model.objects.values_list("pk", flat=True)}, model


def test_each_host_created_event_names_the_host_and_its_zone(topology):
    for host in Host.objects.select_related("zone"):
        event = AuditEvent.objects.get(action="host.created", target_id=str(host.pk))
        assert event.target_type == "hosts.host"
        assert event.target_repr == host.name
        assert event.zone == host.zone.name
        assert event.actor_name == "system"
        assert event.details["after"]["name"] == host.name


def test_the_loader_records_making_phase_1_current(topology):
    event = AuditEvent.objects.get(action="growthphase.made_current")

    assert event.details == {"before": {"current": None}, "after": {"current": 1}}


def test_the_loader_leaves_the_audit_chain_intact(topology):
    report = verify_chain()

    assert report.ok
    assert report.checked == AuditEvent.objects.count() == 30


# --- save_audited -----------------------------------------------------------------------------


def test_an_update_records_before_and_after_of_only_the_changed_fields(topology):
    host = Host.objects.get(name="beamrider")
    host.ssh_port = 2222
    host.ssh_user = "remora"

    assert save_audited(host) is True

    event = AuditEvent.objects.first()
    assert event.action == "host.updated"
    assert event.target_id == str(host.pk)
    assert event.zone == "beamrider"
    assert event.details == {
        "before": {"ssh_port": 22, "ssh_user": "root"},
        "after": {"ssh_port": 2222, "ssh_user": "remora"},
    }
    assert Host.objects.get(name="beamrider").ssh_port == 2222


def test_saving_an_unchanged_object_writes_nothing(topology):
    before = AuditEvent.objects.count()

    assert save_audited(Host.objects.get(name="beamrider")) is False

    assert AuditEvent.objects.count() == before


def test_save_audited_names_the_actor(topology, django_user_model):
    alice = django_user_model.objects.create_user("alice", password="alice-password-1")
    host = Host.objects.get(name="sunjammer")
    host.description = "Community machine, now with more RAM."

    save_audited(host, actor=alice)

    event = AuditEvent.objects.first()
    assert (event.actor_id, event.actor_name) == (alice.pk, "alice")


def test_a_bad_host_name_is_refused_and_nothing_is_written(topology):
    before = _row_counts()
    host = Host(
        name="Bad Name!", address="bad.example.org", zone=Zone.objects.get(name="sunjammer")
    )

    with pytest.raises(ValidationError) as excinfo:
        save_audited(host)

    assert "name" in excinfo.value.message_dict
    assert _row_counts() == before
    assert not Host.objects.filter(name="Bad Name!").exists()


def test_a_port_out_of_range_is_refused_and_nothing_is_written(topology):
    before = _row_counts()
    host = Host.objects.get(name="beamrider")
    host.ssh_port = 70000

    with pytest.raises(ValidationError) as excinfo:
        save_audited(host)

    assert "ssh_port" in excinfo.value.message_dict
    assert _row_counts() == before
    assert Host.objects.get(name="beamrider").ssh_port == 22


def test_a_bad_address_is_refused(topology):
    host = Host.objects.get(name="beamrider")
    host.address = "beam rider; rm -rf /"

    with pytest.raises(ValidationError) as excinfo:
        save_audited(host)

    assert "address" in excinfo.value.message_dict
    assert Host.objects.get(name="beamrider").address == "beamrider.sugarlabs.org"


# --- make_current -----------------------------------------------------------------------------


def test_making_a_phase_current_keeps_exactly_one_current_and_audits_it(topology):
    make_current(_phase(2))

    assert list(GrowthPhase.objects.filter(is_current=True).values_list("number", flat=True)) == [2]
    event = AuditEvent.objects.first()
    assert event.action == "growthphase.made_current"
    assert event.target_id == str(_phase(2).pk)
    assert event.details == {"before": {"current": 1}, "after": {"current": 2}}


def test_making_the_current_phase_current_again_writes_nothing(topology):
    before = AuditEvent.objects.count()

    make_current(_phase(1))

    assert AuditEvent.objects.count() == before
    assert GrowthPhase.objects.get(is_current=True).number == 1


def test_the_loader_keeps_a_phase_made_current_later(topology):
    make_current(_phase(2))

    load_topology()

    assert GrowthPhase.objects.get(is_current=True).number == 2
