"""Faults of the delivery channel: a worker killed mid-run, Redis losing its queue. Nothing is
lost silently and each run runs exactly once."""

import os
import signal
import subprocess
import time

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from django.utils import timezone

from jobs import launch as launching
from jobs import queue
from jobs.faults import reap_lost_runs, reconcile_queue
from jobs.models import HostLock, JobRun, RunState
from jobs.recipes import get
from remora_admin.audit.models import AuditEvent

from .worker_process import start_worker, stop, wait_listening


def is_enqueued(run) -> bool:
    from rq.job import Job

    return Job.exists(run.rq_job_id, connection=queue.queue().connection)


pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def root():
    # The worker process knows only the built-in recipes: the ad-hoc one needs a superadmin.
    return get_user_model().objects.create_superuser("root-admin", "r@example.org", "x")


def _adhoc(user, host, command, *, changes_host=False):
    params = {"command": command, "changes_host": changes_host}
    return launching.launch(user, get("adhoc"), [host], params)[0]


def _wait_state(run, states, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.state in states:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run.pk} stayed {run.state}")


def test_a_worker_killed_mid_run_leaves_a_lost_run_and_a_free_host_lock(
    lab_host, root, redis_conn, tmp_path
):
    tag = f"remora-lost-{os.getpid()}"
    worker = start_worker()
    try:
        wait_listening(worker, redis_conn)
        run = _adhoc(root, lab_host, f"exec -a {tag} sleep 300", changes_host=True)
        _wait_state(run, {RunState.RUNNING})
        while not HostLock.objects.filter(run=run).exists():
            time.sleep(0.05)
        os.killpg(worker.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        with override_settings(REMORA_RUN_HEARTBEAT_TIMEOUT=5):
            while run.pk not in reap_lost_runs():
                assert time.monotonic() - killed_at < 60, "not marked lost within 60 s"
                time.sleep(0.5)
        took = time.monotonic() - killed_at
    finally:
        stop(worker)
        subprocess.run(["pkill", "-f", tag], check=False)

    run.refresh_from_db()
    print(f"marked lost {took:.1f} s after the worker was killed")
    assert run.state == RunState.LOST
    assert run.error.startswith("lost:")
    assert not HostLock.objects.filter(host=lab_host).exists()
    assert AuditEvent.objects.filter(action="run.lost", target_id=str(run.pk)).exists()


def test_runs_lost_from_redis_are_delivered_again_and_run_exactly_once(
    lab_host, root, redis_conn, tmp_path
):
    ledger = tmp_path / "ledger"
    runs = [_adhoc(root, lab_host, f"echo ran-{i} >> {ledger}") for i in range(3)]
    assert all(is_enqueued(r) for r in runs)

    redis_conn.flushdb()  # Redis restarted; it keeps nothing on disk here
    JobRun.objects.filter(pk__in=[r.pk for r in runs]).update(
        queued_at=timezone.now() - timezone.timedelta(seconds=20)
    )
    assert sorted(reconcile_queue()) == sorted(r.pk for r in runs)
    queue.enqueue(runs[0].pk, 60)  # delivered twice: the claim makes the second a no-op
    worker = start_worker(burst=True)
    try:
        worker.wait(timeout=60)
    finally:
        stop(worker)

    for run in runs:
        run.refresh_from_db()
        assert run.state == RunState.SUCCEEDED, run.error
    # Each exactly once, and in launch order (a stop-then-start pair must not swap).
    assert ledger.read_text().split() == ["ran-0", "ran-1", "ran-2"]
    assert reconcile_queue() == []


def test_a_worker_starting_reaps_runs_whose_worker_died(lab_host, root, redis_conn):
    run = _adhoc(root, lab_host, "true")
    old = timezone.now() - timezone.timedelta(minutes=10)
    JobRun.objects.filter(pk=run.pk).update(state=RunState.RUNNING, heartbeat_at=old)

    worker = start_worker(burst=True)
    try:
        worker.wait(timeout=60)
    finally:
        stop(worker)

    run.refresh_from_db()
    assert run.state == RunState.LOST


def test_the_ticker_reaps_and_reconciles(lab_host, root, redis_conn):
    from django.core.management import call_command

    stale = _adhoc(root, lab_host, "true")
    JobRun.objects.filter(pk=stale.pk).update(
        state=RunState.RUNNING, heartbeat_at=timezone.now() - timezone.timedelta(minutes=10)
    )
    waiting = _adhoc(root, lab_host, "true")
    redis_conn.flushdb()
    JobRun.objects.filter(pk=waiting.pk).update(
        queued_at=timezone.now() - timezone.timedelta(seconds=20)
    )

    call_command("remora_ticker", "--once")

    stale.refresh_from_db()
    assert stale.state == RunState.LOST
    assert is_enqueued(waiting)


def test_a_run_the_reaper_marked_lost_stays_lost_when_its_worker_finishes_late(
    lab_host, root, monkeypatch
):
    from jobs import tasks

    run = _adhoc(root, lab_host, "echo late", changes_host=True)
    real_run_script = tasks.ssh.run_script

    def reaped_meanwhile(*args, **kwargs):
        outcome = real_run_script(*args, **kwargs)
        JobRun.objects.filter(pk=run.pk).update(state=RunState.LOST, error="lost: reaped")
        return outcome

    monkeypatch.setattr(tasks.ssh, "run_script", reaped_meanwhile)
    tasks.execute_run(run.pk)

    run.refresh_from_db()
    assert run.state == RunState.LOST
    assert run.error == "lost: reaped"
    assert not AuditEvent.objects.filter(action="run.succeeded", target_id=str(run.pk)).exists()


def test_the_adhoc_lock_checkbox_decides_whether_the_host_lock_is_taken(lab_host, root):
    locked = _adhoc(root, lab_host, "true", changes_host=True)
    unlocked = _adhoc(root, lab_host, "true", changes_host=False)

    assert locked.changes_host is True
    assert unlocked.changes_host is False
