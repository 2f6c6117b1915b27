"""`make run` with the lab up: the demo inventory points at the lab's hosts through the audited
paths, and a community delegate's host-health run on sunjammer really runs there."""

import pytest
from django.urls import reverse

from hosts.models import Credential, Host
from jobs import launch as launching
from jobs.models import JobRun, RunState
from jobs.recipes import get
from jobs.tasks import execute_run
from remora_admin import lab_demo
from remora_admin.access.models import Role
from tests.access.helpers import authenticator, events, give, make_user, sign_in

pytestmark = [pytest.mark.lab, pytest.mark.django_db]


@pytest.fixture
def lead(topology):
    from django.contrib.auth import get_user_model

    bernie = get_user_model().objects.create_superuser("bernie", "b@example.org", "pw-lead-1")
    authenticator(bernie)
    return bernie


@pytest.fixture
def adopted(fresh_lab, lead):
    return lab_demo.adopt(fresh_lab, actor=lead)


def _output(run: JobRun) -> str:
    return b"".join(bytes(c.data) for c in run.chunks.order_by("offset")).decode()


def test_the_demo_inventory_points_at_the_lab_through_the_audited_paths(fresh_lab, lead, adopted):
    sunjammer = Host.objects.get(name="sunjammer")
    entry = next(h for h in fresh_lab["hosts"] if h["name"] == "sunjammer")

    assert (sunjammer.address, sunjammer.service_address) == (
        entry["ssh_address"],
        entry["service_address"],
    )
    assert sunjammer.host_key == entry["host_key"]
    assert sunjammer.host_key_trusted_by == lead
    assert sunjammer.credential.name == lab_demo.CREDENTIAL
    assert len(adopted) == 3
    trusted = events("host.host_key_trusted", actor=lead)
    assert {e.target_repr for e in trusted} == {"beamrider", "sunjammer", "remora2"}
    assert all(e.details["how"] == lab_demo.HOW for e in trusted)
    assert events("host.updated", actor=lead)
    assert Credential.objects.filter(name=lab_demo.CREDENTIAL).count() == 2  # a zone each


def test_adopting_twice_changes_nothing_more(fresh_lab, lead, adopted):
    before = len(events("host.updated")) + len(events("host.host_key_trusted"))

    lab_demo.adopt(fresh_lab, actor=lead)

    assert len(events("host.updated")) + len(events("host.host_key_trusted")) == before


def test_a_delegates_host_health_run_on_sunjammer_runs_on_the_lab_host(adopted):
    carol = make_user("carol")
    give(carol, Role.OPERATOR, "sunjammer")
    sunjammer = Host.objects.get(name="sunjammer")

    [run] = launching.launch(carol, get("host_health"), [sunjammer], {})
    execute_run(run.pk)

    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED, run.error
    output = _output(run)
    assert "== sunjammer at " in output


def test_the_dashboard_says_how_to_get_real_hosts_only_while_unadopted(topology, lead):
    client = sign_in(lead, verified=True)
    from django.test import override_settings

    with override_settings(DEBUG=True):
        before = client.get(reverse("dashboard")).text
        Host.objects.filter(address__endswith=".sugarlabs.org").update(address="127.0.77.9")
        after = client.get(reverse("dashboard")).text

    assert 'id="demo-unreachable"' in before and "make lab" in before
    assert 'id="demo-unreachable"' not in after


def test_the_dashboard_says_so_when_the_adopted_lab_is_down(adopted, lead, settings, tmp_path):
    settings.DEBUG = True
    client = sign_in(lead, verified=True)
    assert 'id="demo-unreachable"' not in client.get(reverse("dashboard")).text

    settings.REMORA_LAB_STATE_FILE = str(tmp_path / "no-lab.json")  # as after make lab-down

    assert 'id="demo-unreachable"' in client.get(reverse("dashboard")).text
