"""The workers page: every worker RQ knows on every machine, the run each is on (tied by the
run's `machine:pid`), silent workers, the backlog, and plain words when there is no worker or
no queue. Workers are registered in the real Redis as RQ registers them (birth, heartbeat);
their runs are real rows."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from hosts.models import Host
from jobs.models import JobRun, RunState
from remora_admin.access.models import Role, Zone
from tests.access.helpers import authenticator, give, make_user, sign_in
from tests.fixtures.workers import register

pytestmark = pytest.mark.django_db


@pytest.fixture
def auditor():
    user = make_user("ivan")
    give(user, Role.AUDITOR)
    authenticator(user)  # a global role must have a second factor (not verified: it only looks)
    return user


@pytest.fixture
def host():
    zone = Zone.objects.create(name="sunjammer", sensitivity=Zone.Sensitivity.STANDARD)
    return Host.objects.create(name="sunjammer", address="127.0.0.1", zone=zone)


def run_on(host, state, worker="") -> JobRun:
    now = timezone.now()
    return JobRun.objects.create(
        host=host, batch=uuid.uuid4(), recipe="host_health", script="uptime", timeout=60,
        state=state, worker=worker,
        queued_at=now - timedelta(seconds=30), started_at=now if worker else None,
        finished_at=now if state == RunState.SUCCEEDED else None,
    )  # fmt: skip


def page(user) -> str:
    response = sign_in(user).get(reverse("jobs:workers"))
    assert response.status_code == 200
    return response.content.decode()


def test_workers_on_two_machines_with_the_runs_they_are_on(auditor, host, redis_conn):
    register("console", 101)
    register("console", 102)
    register("worker2", 7)
    busy = run_on(host, RunState.RUNNING, worker="worker2:7")
    run_on(host, RunState.SUCCEEDED, worker="console:101")
    run_on(host, RunState.SUCCEEDED, worker="console:102")
    run_on(host, RunState.QUEUED)

    html = page(auditor)

    assert "3 workers alive on 2 machines" in html
    assert "1 run queued" in html
    console = html[html.index('id="machine-console"') : html.index('id="machine-worker2"')]
    assert "2 workers, 0 busy" in console and "2 runs ended here in the last 24 hours" in console
    assert console.count(" s ago</td>") == 2  # heard from seconds ago
    assert console.count('<span class="run-state worker-idle">idle</span>') == 2
    other = html[html.index('id="machine-worker2"') :]
    assert "1 worker, 1 busy" in other
    assert '<span class="run-state worker-busy">busy</span>' in other
    assert f'href="{busy.get_absolute_url()}">run #{busy.pk}</a> host_health on sunjammer' in other


def test_a_worker_that_stopped_saying_it_is_alive_is_silent(auditor, host, redis_conn):
    register("worker2", 7, heard=datetime.now(UTC) - timedelta(minutes=2))
    run_on(host, RunState.RUNNING, worker="worker2:7")

    html = page(auditor)

    assert '<span class="run-state worker-silent">silent</span>' in html
    assert "2\xa0minutes ago" in html  # (timesince joins with a no-break space)
    assert "0 workers alive on 1 machine" in html
    assert "marked lost once its heartbeat is 30 s old" in html


def test_no_worker_with_runs_waiting_says_so_and_how_to_start_one(auditor, host, redis_conn):
    run_on(host, RunState.QUEUED)
    run_on(host, RunState.QUEUED)

    html = page(auditor)

    assert 'id="no-workers"' in html and "No worker is running" in html
    assert "2 runs wait for one." in html
    assert "systemctl start remora-worker@1" in html


def test_nothing_at_all_is_a_quiet_empty_state(auditor, redis_conn):
    html = page(auditor)

    assert "No worker is running" in html and 'role="alert"' not in html
    assert "0 runs queued" in html


def test_redis_down_is_said_and_the_backlog_still_shown(auditor, host, monkeypatch):
    from django_rq import settings as rq_settings

    monkeypatch.setitem(rq_settings.QUEUES, "default", {"URL": "redis://127.0.0.1:1/0"})
    run_on(host, RunState.QUEUED)

    html = page(auditor)

    assert "The job queue (Redis) does not answer" in html
    assert "1 run queued" in html


def test_the_board_refreshes_itself_as_a_fragment(auditor, host, redis_conn):
    register("console", 101)
    client = sign_in(auditor)

    full = client.get(reverse("jobs:workers")).content.decode()
    fragment = client.get(reverse("jobs:workers"), headers={"HX-Request": "true"})

    assert 'hx-trigger="every 5s"' in full
    assert fragment.status_code == 200
    text = fragment.content.decode()
    assert "<html" not in text and "1 worker alive on 1 machine" in text


def test_only_those_who_read_every_run_see_the_page_and_its_link(auditor, host):
    operator = make_user("carol")
    give(operator, Role.OPERATOR, "sunjammer")

    assert sign_in(operator).get(reverse("jobs:workers")).status_code == 403
    assert (
        reverse("jobs:workers") not in sign_in(operator).get(reverse("dashboard")).content.decode()
    )
    assert reverse("jobs:workers") in sign_in(auditor).get(reverse("dashboard")).content.decode()


def test_the_api_gives_the_same_board(auditor, host, redis_conn):
    register("worker2", 7)
    busy = run_on(host, RunState.RUNNING, worker="worker2:7")
    run_on(host, RunState.QUEUED)

    answer = sign_in(auditor).get("/api/workers/")

    assert answer.status_code == 200
    data = answer.json()
    assert data["alive"] == 1 and data["queued"] == 1 and data["queue_error"] == ""
    [worker] = data["workers"]
    assert worker["name"] == "worker2:7" and worker["machine"] == "worker2"
    assert worker["state"] == "busy" and worker["run"] == busy.pk
