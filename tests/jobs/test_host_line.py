"""The fair line per host with real workers (issue 13, fault 3): A, B, C launched in that order
on one host run in that order with two workers, never two at once (times taken on the host),
and a run on another host is not held up by the wait, since no worker waits for a host."""

import time

import pytest
from django.contrib.auth import get_user_model

from jobs import launch as launching
from jobs.models import JobRun, RunState
from jobs.recipes import get

from .conftest import host_for
from .worker_process import start_worker, stop, wait_listening

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def root():
    return get_user_model().objects.create_superuser("root-admin", "r@example.org", "x")


def _adhoc(user, host, command, *, changes_host):
    params = {"command": command, "changes_host": changes_host}
    return launching.launch(user, get("adhoc"), [host], params)[0]


def test_runs_on_one_host_go_in_launch_order_and_other_hosts_do_not_wait(
    sshd_host, zone, credential, root, redis_conn, tmp_path
):
    busy = host_for(sshd_host, zone, credential, name="busy")
    other = host_for(sshd_host, zone, credential, name="other")
    ledger = tmp_path / "ledger"

    def step(name: str, seconds: float) -> str:
        return (f"echo {name} start $(date +%s.%N) >> {ledger}; sleep {seconds}; "
                f"echo {name} end $(date +%s.%N) >> {ledger}")  # fmt: skip

    workers = [start_worker(), start_worker()]
    try:
        for worker in workers:
            wait_listening(worker, redis_conn)
        a = _adhoc(root, busy, step("A", 2.0), changes_host=True)
        b = _adhoc(root, busy, step("B", 0.5), changes_host=True)
        c = _adhoc(root, busy, step("C", 0.5), changes_host=True)
        time.sleep(0.5)  # B and C are in line behind A, in no worker
        aside = _adhoc(root, other, "true", changes_host=True)
        launched = time.monotonic()
        while JobRun.objects.get(pk=aside.pk).state != RunState.SUCCEEDED:
            assert time.monotonic() - launched < 10, "the run on the other host waited"
            time.sleep(0.05)
        aside_took = time.monotonic() - launched
        assert JobRun.objects.get(pk=a.pk).state == RunState.RUNNING  # A still holds its host
        deadline = time.monotonic() + 60
        while (
            JobRun.objects.filter(pk__in=[a.pk, b.pk, c.pk], state=RunState.SUCCEEDED).count() < 3
        ):
            assert time.monotonic() < deadline, "A, B and C did not all finish"
            time.sleep(0.1)
    finally:
        for worker in workers:
            stop(worker)

    lines = [line.split() for line in ledger.read_text().splitlines()]
    assert [(name, what) for name, what, _ in lines] == [
        ("A", "start"), ("A", "end"), ("B", "start"), ("B", "end"), ("C", "start"), ("C", "end"),
    ]  # fmt: skip
    stamps = [float(at) for _, _, at in lines]
    assert stamps == sorted(stamps)  # never two at once on the host
    print(f"the other host's run took {aside_took:.2f} s while A held its host")
    assert aside_took < 1.8  # less than A's remaining time: it did not wait behind A
