"""The demo in a real browser, on the lab: a community delegate signs in, launches host health
on sunjammer (a real Debian 12 host) and watches its output arrive."""

import pytest
from django.contrib.auth import get_user_model

from hosts.models import Host
from hosts.topology import load_topology
from jobs.models import JobRun, RunState
from lab.config import RELAY_NET
from remora_admin import lab_demo
from remora_admin.access.models import Grant, Role, Zone
from tests.access.helpers import authenticator
from tests.jobs.worker_process import start_worker, stop, wait_listening

PASSWORD = "a-long-e2e-password-for-the-lab"
pytestmark = [pytest.mark.e2e, pytest.mark.lab, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(fresh_lab, transactional_db, redis_conn):
    """The seed's inventory pointed at the lab as `make run` does, and a worker."""
    load_topology()
    User = get_user_model()
    bernie = User.objects.create_superuser("bernie", "b@example.org", PASSWORD)
    authenticator(bernie)
    lab_demo.adopt(fresh_lab, actor=bernie)
    dan = User.objects.create_user("dan", "dan@example.org", PASSWORD)
    Grant.objects.create(
        user=dan, role=Role.OPERATOR, zone=Zone.objects.get(name="sunjammer"), reason="delegate"
    )
    worker = start_worker()
    wait_listening(worker, redis_conn)
    yield dan
    stop(worker)


def test_a_delegate_launches_host_health_on_the_labs_sunjammer_and_sees_live_output(
    live_server, page, console_errors, screenshot, demo
):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "dan")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("#demo-unreachable").count() == 0

    page.goto(f"{live_server.url}{Host.objects.get(name='sunjammer').get_absolute_url()}")
    page.click("text=Launch a recipe")
    page.click("article.recipe:has-text('Host health') >> text=Choose")
    page.click("button[name=preview]")
    page.click("button[name=launch]")

    page.wait_for_selector("#output >> text=== sunjammer at", timeout=20000)
    page.wait_for_selector("#run-state >> text=Succeeded", timeout=20000)
    screenshot(page, "lab-run-live")
    run = JobRun.objects.get()
    assert run.state == RunState.SUCCEEDED and run.host.address.startswith(RELAY_NET)
    assert console_errors == []
