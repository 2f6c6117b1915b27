"""Faults between the queue and the claim (issue 13, faults 1, 3, 4 and 6):

- RQ's window in which deleting an abandoned job raises ("Execution ... not found in Redis"):
  the reconciler and the real ticker process survive it, and the run is delivered again;
- a run queued in the database while RQ says a worker that died has it: delivered again, and a
  real worker then runs it once;
- three reconcilers racing: each run is delivered again once, with one `run.redelivered`.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction
from django.utils import timezone
from rq.executions import ExecutionRegistry
from rq.job import Job

from jobs import faults, queue
from jobs import launch as launching
from jobs.models import HostLock, JobRun, RunState
from jobs.recipes import get
from remora_admin.audit.models import AuditEvent

from .worker_process import ROOT, start_worker, stop, wait_listening, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def root():
    return get_user_model().objects.create_superuser("root-admin", "r@example.org", "x")


def _adhoc(user, host, command):
    return launching.launch(user, get("adhoc"), [host], {"command": command})[0]


def _age(*runs, seconds=30):
    JobRun.objects.filter(pk__in=[r.pk for r in runs]).update(
        queued_at=timezone.now() - timedelta(seconds=seconds)
    )


def _redelivered(run) -> int:
    return AuditEvent.objects.filter(action="run.redelivered", target_id=str(run.pk)).count()


def _in_rq_window(run, redis_conn) -> Job:
    """What RQ leaves for about a minute after its clean-up marked an abandoned job failed: the
    job's execution registry names an execution whose record has expired."""
    job = Job.fetch(run.rq_job_id, connection=redis_conn)
    redis_conn.lrem(queue.queue().key, 0, job.id)
    job.set_status("failed")
    redis_conn.zadd(
        ExecutionRegistry(job.id, redis_conn).key, {"expired-execution": time.time() + 600}
    )
    with pytest.raises(ValueError, match="not found in Redis"):
        Job.fetch(run.rq_job_id, connection=redis_conn).delete()  # what crashed the ticker
    return job


def _queued_once(run, redis_conn) -> bool:
    ids = [i.decode() for i in redis_conn.lrange(queue.queue().key, 0, -1)]
    return ids.count(run.rq_job_id) == 1


def test_the_reconciler_survives_rqs_window_and_delivers_the_run_again(lab_host, root, redis_conn):
    stuck, fine = _adhoc(root, lab_host, "true"), _adhoc(root, lab_host, "true")
    _in_rq_window(stuck, redis_conn)
    redis_conn.delete(Job.key_for(fine.rq_job_id))  # the other one simply gone from Redis
    redis_conn.lrem(queue.queue().key, 0, fine.rq_job_id)
    _age(stuck, fine)

    assert faults.reconcile_queue() == [stuck.pk, fine.pk]

    assert _queued_once(stuck, redis_conn) and _queued_once(fine, redis_conn)
    assert Job.fetch(stuck.rq_job_id, connection=redis_conn).get_status() == "queued"
    assert _redelivered(stuck) == _redelivered(fine) == 1
    assert faults.reconcile_queue() == []  # not again within RECONCILE_AFTER


def test_the_ticker_process_survives_rqs_window(lab_host, root, redis_conn, tmp_path):
    run = _adhoc(root, lab_host, "true")
    _in_rq_window(run, redis_conn)
    _age(run)
    log = tmp_path / "ticker.log"
    with open(log, "wb") as out:
        ticker = subprocess.Popen(
            [sys.executable, "manage.py", "remora_ticker", "--interval", "0.3"], cwd=ROOT,
            env=worker_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _redelivered(run):
            assert ticker.poll() is None, f"the ticker died: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "not delivered again within 30 s"
            time.sleep(0.2)
        time.sleep(1.0)  # a few more ticks
        assert ticker.poll() is None, f"the ticker died: {log.read_text()[-2000:]}"
    finally:
        ticker.send_signal(signal.SIGTERM)
        ticker.wait(timeout=15)
    assert _queued_once(run, redis_conn)
    assert _redelivered(run) == 1


def test_a_run_taken_by_a_worker_that_died_before_its_claim_runs_once(
    lab_host, root, redis_conn, tmp_path, monkeypatch
):
    ledger = tmp_path / "ledger"
    worker = start_worker()
    try:
        wait_listening(worker, redis_conn)
        # Hold the run's row so the worker's claim waits; then kill the worker: RQ says
        # "started" by a worker that no longer exists, the database still says queued.
        holder = connections.create_connection("default")
        try:
            with holder.cursor() as cursor:
                cursor.execute("START TRANSACTION")
                run = _adhoc(root, lab_host, f"echo ran >> {ledger}")
                cursor.execute("SELECT id FROM jobs_jobrun WHERE id = %s FOR UPDATE", [run.pk])
                job = Job.fetch(run.rq_job_id, connection=redis_conn)
                deadline = time.monotonic() + 20
                while job.get_status(refresh=True) != "started":
                    assert time.monotonic() < deadline, "the worker did not take the job"
                    time.sleep(0.05)
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)
                # The dead worker's database session still waits for the row; the server would
                # drop it once it noticed the client gone. Do that now, then let go.
                with connection.cursor() as mine:
                    mine.execute("SELECT CONNECTION_ID()")
                    ours = {mine.fetchone()[0]}
                cursor.execute("SELECT CONNECTION_ID()")
                ours.add(cursor.fetchone()[0])
                cursor.execute(
                    "SELECT id FROM information_schema.processlist WHERE db = DATABASE()"
                )
                for (session,) in cursor.fetchall():
                    if session not in ours:
                        cursor.execute(f"KILL {int(session)}")
                cursor.execute("ROLLBACK")
        finally:
            holder.close()
    finally:
        stop(worker)
    _age(run)
    run.refresh_from_db()
    assert run.state == RunState.QUEUED
    assert faults.reconcile_queue() == []  # its worker's last word is recent: maybe alive
    monkeypatch.setattr(faults, "WORKER_SILENT", timedelta(seconds=0))
    assert faults.reconcile_queue() == [run.pk]

    survivor = start_worker()
    try:  # (not --burst: RQ's own shutdown sometimes hangs after the work is done, rq#1613)
        deadline = time.monotonic() + 60
        while JobRun.objects.get(pk=run.pk).state == RunState.QUEUED:
            assert time.monotonic() < deadline, "the run was not run again"
            time.sleep(0.1)
        while JobRun.objects.get(pk=run.pk).state == RunState.RUNNING:
            time.sleep(0.1)
    finally:
        stop(survivor)
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED, run.error
    assert ledger.read_text().split() == ["ran"]
    assert _redelivered(run) == 1


def test_racing_reconcilers_deliver_each_run_again_once(lab_host, root, redis_conn):
    runs = [_adhoc(root, lab_host, "true") for _ in range(5)]
    redis_conn.flushdb()  # Redis lost its queue
    _age(*runs)
    results, start = [], threading.Barrier(3)

    def reconcile():
        try:
            start.wait()
            results.append(faults.reconcile_queue())
        finally:
            connection.close()

    threads = [threading.Thread(target=reconcile) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    delivered = sorted(pk for found in results for pk in found)
    assert delivered == sorted(r.pk for r in runs)
    assert all(_redelivered(r) == 1 for r in runs)
    assert all(_queued_once(r, redis_conn) for r in runs)


def test_a_cancelled_queued_run_records_its_cancel(lab_host, root):
    run = _adhoc(root, lab_host, "true")
    with transaction.atomic():
        assert launching.cancel(root, run, second_factor=True) == "cancelled"
    assert AuditEvent.objects.filter(action="run.cancelled", target_id=str(run.pk)).count() == 1


def test_a_cold_shutdown_mid_run_ends_it_in_words_frees_the_host_and_kills_the_command(
    lab_host, root, redis_conn
):
    tag = f"remora-cold-{os.getpid()}"
    run = launching.launch(
        root,
        get("adhoc"),
        [lab_host],
        {"command": f"exec -a {tag} sleep 300", "changes_host": True},
    )[0]
    worker = start_worker()
    try:
        wait_listening(worker, redis_conn)
        deadline = time.monotonic() + 20
        while not subprocess.run(["pgrep", "-f", tag], capture_output=True).stdout:
            assert time.monotonic() < deadline, "the command did not start on the host"
            time.sleep(0.05)
        os.killpg(worker.pid, signal.SIGTERM)  # warm: it would wait for the run to end
        time.sleep(1.3)  # RQ ignores a second signal within a second of the first
        os.killpg(worker.pid, signal.SIGTERM)  # cold
        stopped = time.monotonic()
        worker.wait(timeout=20)
    finally:
        stop(worker)
        left = subprocess.run(["pgrep", "-f", tag], capture_output=True).stdout
        subprocess.run(["pkill", "-f", tag], check=False)
    run.refresh_from_db()
    assert run.state == RunState.FAILED
    assert run.error.startswith("worker stopped during the run")
    assert not HostLock.objects.filter(host=lab_host).exists()
    assert not left, "the command went on on the host after the worker stopped"
    print(f"the worker stopped {time.monotonic() - stopped:.1f} s after the second signal")
