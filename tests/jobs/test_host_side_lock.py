"""The host stays single-writer whatever happens to the console (issue 13, faults 2 and 6).

A worker killed (or frozen) mid-run leaves its command running on the host; the reaper marks the
run lost and frees the console's lock; the next host-changing run on that host still waits for
the host-side lock, so the two never overlap (times taken on the host). When the next run ends,
the host's own record resolves the lost one. Cancel also kills what left the run's session.
"""

import os
import signal
import subprocess
import time

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from jobs import launch as launching
from jobs import resolve
from jobs.faults import reap_lost_runs
from jobs.models import JobRun, Resolution, RunState
from jobs.recipes import get
from remora_admin.audit.models import AuditEvent

from .conftest import output_of
from .worker_process import start_worker, stop, wait_listening

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def root():
    return get_user_model().objects.create_superuser("root-admin", "r@example.org", "x")


def _change(user, host, command):
    params = {"command": command, "changes_host": True}
    return launching.launch(user, get("adhoc"), [host], params)[0]


def _until(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what() if callable(what) else what
        time.sleep(0.05)


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_a_lost_runs_command_and_the_next_run_never_overlap_and_the_host_resolves_it(
    lab_host, root, redis_conn, tmp_path, fault
):
    ledger = tmp_path / "ledger"

    def step(name, seconds):
        return (f"echo {name} start $(date +%s.%N) >> {ledger}; sleep {seconds}; "
                f"echo {name} end $(date +%s.%N) >> {ledger}")  # fmt: skip

    first = start_worker()
    second = None
    try:
        wait_listening(first, redis_conn)
        a = _change(root, lab_host, step("A", 4))
        _until(lambda: ledger.exists() and "A start" in ledger.read_text(), 20, "A did not start")
        os.killpg(first.pid, signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
        time.sleep(1.2)
        with override_settings(REMORA_RUN_HEARTBEAT_TIMEOUT=1):
            assert reap_lost_runs() == [a.pk]
        a.refresh_from_db()
        assert a.state == RunState.LOST and a.resolution == ""
        b = _change(root, lab_host, step("B", 0.2))
        second = start_worker()
        _until(lambda: JobRun.objects.get(pk=b.pk).finished, 30, "B did not finish")
        # Once B has ended, its worker asks the host about A.
        _until(lambda: JobRun.objects.get(pk=a.pk).resolution, 15, "A was not resolved")
    finally:
        for worker in (first, second):
            if worker is not None:
                if fault == "frozen" and worker is first and worker.poll() is None:
                    os.killpg(worker.pid, signal.SIGCONT)
                stop(worker)

    b.refresh_from_db()
    assert b.state == RunState.SUCCEEDED, b.error
    assert b"remora: waiting for the host: a command of" in output_of(b)
    lines = [line.split() for line in ledger.read_text().splitlines()]
    assert [(n, what) for n, what, _ in lines] == [
        ("A", "start"), ("A", "end"), ("B", "start"), ("B", "end")
    ]  # fmt: skip
    stamps = [float(at) for _, _, at in lines]
    assert stamps == sorted(stamps)
    a.refresh_from_db()  # B's end asked the host about A: its command finished, exit 0
    assert (a.state, a.resolution, a.exit_code) == (RunState.LOST, Resolution.SUCCEEDED, 0)
    assert AuditEvent.objects.filter(action="run.resolved", target_id=str(a.pk)).count() == 1


def test_a_person_checks_a_lost_run_still_running_and_kills_it(lab_host, root, redis_conn):
    tag = f"remora-still-{os.getpid()}"
    worker = start_worker()
    try:
        wait_listening(worker, redis_conn)
        run = _change(root, lab_host, f"exec -a {tag} sleep 300")
        _until(lambda: subprocess.run(["pgrep", "-f", tag], capture_output=True).stdout, 20,
               "the command did not start")  # fmt: skip
        os.killpg(worker.pid, signal.SIGKILL)
        time.sleep(1.2)
        with override_settings(REMORA_RUN_HEARTBEAT_TIMEOUT=1):
            assert reap_lost_runs() == [run.pk]
        run.refresh_from_db()

        assert resolve.check(run) == Resolution.RUNNING
        assert resolve.check(run, killed=True, actor_name="root-admin") == Resolution.KILLED
    finally:
        stop(worker)
        left = subprocess.run(["pgrep", "-f", tag], capture_output=True).stdout
        subprocess.run(["pkill", "-f", tag], check=False)
    assert not left, "the lost run's command still runs after the kill"
    run.refresh_from_db()
    assert run.resolution == Resolution.KILLED
    resolved = AuditEvent.objects.filter(action="run.resolved", target_id=str(run.pk))
    assert [e.details["resolution"] for e in resolved.order_by("sequence")] == [
        "running", "killed"
    ]  # fmt: skip


def test_cancel_kills_a_child_that_left_the_runs_session(lab_host, root, redis_conn):
    tag = f"remora-setsid-{os.getpid()}"
    worker = start_worker()
    try:
        wait_listening(worker, redis_conn)
        run = _change(root, lab_host, f"setsid bash -c 'exec -a {tag} sleep 300' & sleep 300")
        _until(lambda: subprocess.run(["pgrep", "-f", tag], capture_output=True).stdout, 20,
               "the child did not start")  # fmt: skip
        assert launching.cancel(root, JobRun.objects.get(pk=run.pk), second_factor=True) == (
            "stopping"
        )
        _until(lambda: JobRun.objects.get(pk=run.pk).finished, 20, "the run did not stop")
    finally:
        stop(worker)
        left = subprocess.run(["pgrep", "-f", tag], capture_output=True).stdout
        subprocess.run(["pkill", "-f", tag], check=False)
    assert JobRun.objects.get(pk=run.pk).state == RunState.CANCELLED
    assert not left, "the child that left the session survived the cancel"


def test_a_timed_out_run_leaves_nothing_behind_and_a_daemon_holds_no_lock(
    lab_host, root, redis_conn
):
    tag, daemon = f"remora-late-{os.getpid()}", f"remora-daemon-{os.getpid()}"
    slow = _change(root, lab_host, f"setsid bash -c 'exec -a {tag} sleep 300' & sleep 300")
    JobRun.objects.filter(pk=slow.pk).update(timeout=2)  # before any worker takes it
    worker = start_worker()
    try:
        wait_listening(worker, redis_conn)
        _until(lambda: JobRun.objects.get(pk=slow.pk).finished, 30, "it did not time out")
        left = subprocess.run(["pgrep", "-f", tag], capture_output=True).stdout
        # A script that leaves a daemon behind ends; the daemon does not keep the host locked.
        first = _change(
            root, lab_host, f"setsid bash -c 'exec -a {daemon} sleep 300' >/dev/null 2>&1 &"
        )
        _until(lambda: JobRun.objects.get(pk=first.pk).finished, 20, "it did not end")
        second = _change(root, lab_host, "true")
        _until(lambda: JobRun.objects.get(pk=second.pk).finished, 20, "the host stayed locked")
    finally:
        stop(worker)
        subprocess.run(["pkill", "-f", tag], check=False)
        subprocess.run(["pkill", "-f", daemon], check=False)
    assert JobRun.objects.get(pk=slow.pk).state == RunState.TIMED_OUT
    assert not left, "a child that left the session outlived the timeout"
    assert JobRun.objects.get(pk=second.pk).state == RunState.SUCCEEDED
    assert b"waiting for the host" not in output_of(JobRun.objects.get(pk=second.pk))
