"""The Plan page and a plan's page, as people see them: the steps in order with both pictures,
only the hosts one may see, Apply offered to whoever may provision every step, refusals in words
that change nothing, and a finished plan's page that stops polling."""

import pytest

from hosts.models import GrowthPhase, Host
from jobs.models import PlanBatch
from remora_admin.audit.models import AuditEvent
from tests.access.helpers import authenticator, give, make_user, sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead(topology):
    user = make_user("bernie", is_superuser=True, is_staff=True)
    authenticator(user)
    return sign_in(user, verified=True, sudo=True)


def test_the_plan_page_shows_now_and_next_and_the_steps_in_order(lead):
    page = lead.get("/plan/").content.decode()

    assert page.count('class="topology-svg"') == 2
    assert "Now: Phase 1: Entire load on beamrider" in page
    assert "Next: Phase 2: A PHP front end on sunjammer" in page
    steps = ["Host health", "MariaDB master", "Export the data directories over NFS",
             "Mount the data directories from the NFS server", "Provision the PHP front end",
             "Add a front end to the Perlbal pool"]  # fmt: skip
    positions = [page.index(f"<strong>{title}</strong>") for title in steps]
    assert positions == sorted(positions)
    assert "Apply: 6 steps" in page
    assert 'name="app_password"' in page and 'value="main"' in page  # the ref is proposed


def test_installing_the_current_phase_from_nothing_lists_the_whole_phase(lead):
    page = lead.get("/plan/", {"from": "nothing"}).content.decode()

    assert "Install Phase 1: Entire load on beamrider on fresh hosts" in page
    assert "Apply: 4 steps" in page
    assert page.count('class="topology-svg"') == 1


def test_a_delegate_sees_only_sunjammers_steps_and_no_apply(topology):
    carol = make_user("carol")
    give(carol, "zone_admin", "sunjammer")
    page = sign_in(carol).get("/plan/").content.decode()

    assert "beamrider</a>" not in page
    assert "Mount the data directories from the NFS server" in page
    assert "3 more steps on hosts you cannot see." in page
    assert "Apply:" not in page
    assert "Applying this plan needs the right to provision every host it touches." in page


def test_apply_without_what_the_plan_needs_changes_nothing_and_says_so(lead):
    response = lead.post("/plan/apply/", {"to": "2"})

    assert response.status_code == 400
    assert "Nothing was applied." in response.content.decode()
    assert "This field is required." in response.content.decode()
    assert not PlanBatch.objects.exists()


def test_apply_on_hosts_not_ready_names_each_problem_and_audits_the_refusal(lead):
    Host.objects.filter(name="sunjammer").update(credential=None)
    response = lead.post(
        "/plan/apply/",
        {"to": "2", "repo_url": "https://git.example.org/r.git", "ref": "main",
         "app_password": "a-Good-password-1"},
    )  # fmt: skip

    page = response.content.decode()
    assert response.status_code == 400
    assert "sunjammer has no SSH credential" in page
    assert "beamrider has no SSH credential" in page
    assert not PlanBatch.objects.exists()
    refused = AuditEvent.objects.get(action="plan.refused")
    assert any("sunjammer has no SSH credential" in p for p in refused.details["problems"])


def test_a_stale_page_cannot_apply_another_phase(lead):
    values = {"repo_url": "https://g.example.org/r.git", "ref": "main", "app_password": "pw-1"}
    response = lead.post("/plan/apply/", {"to": "3", **values})

    assert response.status_code == 400
    assert "The phases changed since this page was shown" in response.content.decode()


def test_a_finished_plans_page_stops_polling(lead):
    batch = PlanBatch.objects.create(
        from_phase=GrowthPhase.objects.get(number=1),
        to_phase=GrowthPhase.objects.get(number=2),
        status=PlanBatch.Status.SUCCEEDED,
    )
    batch.steps.create(position=1, recipe="host_health", host=Host.objects.get(name="sunjammer"),
                       why="test", status="succeeded")  # fmt: skip

    full = lead.get(f"/plan/{batch.pk}/")
    polled = lead.get(f"/plan/{batch.pk}/", headers={"HX-Request": "true"})

    assert "1 of 1 step done" in full.content.decode()
    assert "the stack is in Phase 2" in full.content.decode()
    assert polled.status_code == 286  # htmx stops polling
    assert "<html" not in polled.content.decode()
