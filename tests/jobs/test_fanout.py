"""Fan-out (issue 12, item 4): one launch on many hosts, run by a pool of worker processes.

Real loopback OpenSSH servers (one per host, each its own address and host key), a real
`manage.py remora_worker --concurrency N` process, MariaDB and Redis. No timed assertions: the
runs prove they ran at once by waiting for each other on the "host" (the hosts are this
machine), and their recorded intervals overlap.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from hosts.models import Host
from jobs.launch import launch_many
from jobs.models import FINISHED, JobRun, RunState
from jobs.recipes import get
from jobs.tasks import execute_run
from remora_admin.access.models import Zone
from remora_admin.audit.models import AuditEvent

from .conftest import host_for, output_of
from .worker_process import ROOT, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def root():
    # The worker process knows only the built-in recipes: the ad-hoc one needs a superadmin.
    return get_user_model().objects.create_superuser("root-admin", "r@example.org", "x")


@pytest.fixture
def fleet(make_sshd, zone, credential):
    """Three hosts, each on its own sshd."""
    return [host_for(make_sshd(), zone, credential, name=f"fleet{i}") for i in range(1, 4)]


@pytest.fixture
def pools():
    """Start `manage.py remora_worker --concurrency N` (its own process group); every pool is
    killed, group and all, after the test."""
    started: list[subprocess.Popen] = []

    def start(concurrency: int) -> subprocess.Popen:
        pool = subprocess.Popen(
            [sys.executable, "manage.py", "remora_worker", "--concurrency", str(concurrency)],
            cwd=ROOT,
            env=worker_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append(pool)
        return pool

    yield start
    for pool in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pool.pid, signal.SIGKILL)
        pool.wait(timeout=10)


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            text = stat.read_text()
            if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
                found.add(int(text.split(" ", 1)[0]))
    return found


def until(condition, what: str, pool: subprocess.Popen | None = None, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        if pool is not None and pool.poll() is not None:
            raise AssertionError(f"the pool exited ({pool.returncode}) before {what}: "
                                 f"{pool.stdout.read().decode()[-3000:]}")  # fmt: skip
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.05)
    return found


def listening(pool: subprocess.Popen, redis_conn, n: int) -> set[int]:
    """Wait until the pool's n workers listen on the queue; their pids."""
    from rq import Worker

    def workers():
        mine = children_of(pool.pid)
        pids = {w.pid for w in Worker.all(connection=redis_conn) if w.pid in mine}
        return pids if len(pids) == n else None

    return until(workers, f"{n} workers listening", pool)


def ended(runs, pool=None, seconds: float = 60) -> list[JobRun]:
    ids = [r.pk for r in runs]
    done = JobRun.objects.filter(pk__in=ids, state__in=FINISHED)
    until(lambda: done.count() == len(ids), f"runs {ids} ended", pool, seconds)
    return list(JobRun.objects.filter(pk__in=ids).order_by("pk"))


def barrier(directory: Path, n: int) -> str:
    """A command that marks its run in `directory`, then waits until `n` runs did (at most
    30 s, then fails): runs launched together end only if they ran at the same time."""
    return (
        f'd={directory}; touch "$d/$REMORA_RUN"; i=0; '
        f'until [ "$(ls "$d" | wc -l)" -ge {n} ]; do sleep 0.05; i=$((i+1)); '
        '[ $i -lt 600 ] || { echo "ran alone" >&2; exit 9; }; done; echo together'
    )


def test_a_launch_on_several_hosts_makes_one_run_per_host_and_the_pool_runs_them_at_once(
    fleet, root, redis_conn, pools, tmp_path
):
    pool = pools(3)
    workers = listening(pool, redis_conn, 3)
    marks = tmp_path / "marks"
    marks.mkdir()
    params = {"command": barrier(marks, 3), "changes_host": False}

    fan = launch_many(root, get("adhoc"), fleet, params)

    assert fan.refusals == []
    assert [r.host for r in fan.runs] == fleet
    assert len({r.batch for r in fan.runs}) == 1  # one launch, one batch
    runs = ended(fan.runs, pool)
    assert [r.state for r in runs] == [RunState.SUCCEEDED] * 3, [r.error for r in runs]
    assert all(output_of(r, "out") == b"together\n" for r in runs)
    for run in runs:
        requested = AuditEvent.objects.get(action="run.requested", target_id=str(run.pk))
        assert requested.actor == root
        assert requested.details["batch"] == str(run.batch)
        assert requested.details["host"] == run.host.name
        assert AuditEvent.objects.filter(action="run.started", target_id=str(run.pk)).exists()
        assert AuditEvent.objects.filter(action="run.succeeded", target_id=str(run.pk)).exists()
    # Three workers, one run each, and the runs' intervals overlap.
    assert {int(r.worker.rsplit(":", 1)[1]) for r in runs} == workers
    assert max(r.started_at for r in runs) < min(r.finished_at for r in runs)


def test_a_refused_host_is_reported_with_its_reason_and_the_others_run(
    make_sshd, zone, credential, carol
):
    ok = host_for(make_sshd(), zone, credential, name="ok1")
    also_ok = host_for(make_sshd(), zone, credential, name="ok2")
    retired = host_for(make_sshd(), zone, credential, name="retired")
    Host.objects.filter(pk=retired.pk).update(active=False)
    retired.refresh_from_db()
    other_zone = Zone.objects.create(name="elsewhere", sensitivity=Zone.Sensitivity.STANDARD)
    foreign = Host.objects.create(name="foreign", address="127.0.0.1", zone=other_zone)
    hosts = [ok, retired, foreign, also_ok]

    fan = launch_many(carol, get("host_health"), hosts, {})

    assert [r.host for r in fan.runs] == [ok, also_ok]
    assert fan.refused_hosts == [retired, foreign]
    reasons = {r.target.name: r.code for r in fan.refusals}
    assert reasons == {"retired": "host_inactive", "foreign": "no_role"}
    assert all(r.message for r in fan.refusals)
    denied = AuditEvent.objects.get(action="access.denied", target_id=str(foreign.pk))
    assert denied.details["reason"] == "no_role" and denied.actor == carol
    refused = AuditEvent.objects.get(action="run.refused", target_id=str(retired.pk))
    assert refused.details["reason"] == "host_inactive"
    assert not JobRun.objects.filter(host__in=[retired, foreign]).exists()
    for run in fan.runs:
        execute_run(run.pk)
        run.refresh_from_db()
        assert run.state == RunState.SUCCEEDED, run.error
        assert b"== uptime and load" in output_of(run, "out")


def test_all_or_nothing_creates_nothing_when_one_host_is_refused(
    make_sshd, zone, credential, carol
):
    ok = host_for(make_sshd(), zone, credential, name="ok1")
    retired = host_for(make_sshd(), zone, credential, name="retired")
    Host.objects.filter(pk=retired.pk).update(active=False)
    retired.refresh_from_db()

    fan = launch_many(carol, get("host_health"), [ok, retired], {}, all_or_nothing=True)

    assert fan.runs == [] and fan.refused_hosts == [retired]
    assert [r.code for r in fan.refusals] == ["host_inactive"]
    assert not JobRun.objects.exists()
    assert AuditEvent.objects.filter(action="run.refused", target_id=str(retired.pk)).exists()


def test_a_host_named_twice_runs_once(make_sshd, zone, credential, carol):
    ok = host_for(make_sshd(), zone, credential, name="ok1")
    fan = launch_many(carol, get("host_health"), [ok, ok], {})
    assert [r.host for r in fan.runs] == [ok]


def test_the_queue_down_refuses_the_launch_and_keeps_the_refusals_audited(
    make_sshd, zone, credential, carol, monkeypatch
):
    """Redis down is no host's fault: nothing is created and the launch says why (as `launch`
    does); the refusal decided before it (a host not active) stays in the audit log."""
    from django_rq import settings as rq_settings

    from jobs.queue import QueueUnavailable

    retired = host_for(make_sshd(), zone, credential, name="retired")
    Host.objects.filter(pk=retired.pk).update(active=False)
    retired.refresh_from_db()
    ok = host_for(make_sshd(), zone, credential, name="ok1")
    monkeypatch.setitem(rq_settings.QUEUES, "default", {"URL": "redis://127.0.0.1:1/0"})

    with pytest.raises(QueueUnavailable):
        launch_many(carol, get("host_health"), [retired, ok], {})

    assert not JobRun.objects.exists()
    assert not AuditEvent.objects.filter(action="run.requested").exists()
    assert AuditEvent.objects.filter(action="run.refused", target_id=str(retired.pk)).exists()


def test_sigterm_lets_the_runs_end_and_stops_the_pool(fleet, root, redis_conn, pools, tmp_path):
    """The first SIGTERM is the warm shutdown: the runs in progress end as they would, no new
    one starts, then the pool exits 0."""
    pool = pools(2)
    listening(pool, redis_conn, 2)
    go = tmp_path / "go"
    wait = f"until [ -e {go} ]; do sleep 0.05; done; echo released"
    fan = launch_many(root, get("adhoc"), fleet[:2], {"command": wait, "changes_host": True})
    running = JobRun.objects.filter(pk__in=[r.pk for r in fan.runs], state=RunState.RUNNING)
    until(lambda: running.count() == 2, "both runs running", pool)

    pool.send_signal(signal.SIGTERM)
    stopping(pool, redis_conn, 2)
    later = launch_many(root, get("adhoc"), fleet[2:], {"command": "true", "changes_host": False})
    go.touch()

    assert pool.wait(timeout=60) == 0, pool.stdout.read().decode()[-3000:]
    runs = ended(fan.runs)
    assert [r.state for r in runs] == [RunState.SUCCEEDED] * 2, [r.error for r in runs]
    assert JobRun.objects.get(pk=later.runs[0].pk).state == RunState.QUEUED  # not taken
    assert not JobRun.objects.filter(state=RunState.RUNNING).exists()


def stopping(pool, redis_conn, n: int) -> None:
    """Wait until the pool's n busy workers took the warm shutdown (RQ notes it in Redis)."""
    from rq import Worker

    def asked():
        mine = children_of(pool.pid)
        workers = [w for w in Worker.all(connection=redis_conn) if w.pid in mine]
        return len([w for w in workers if w.shutdown_requested_date]) == n

    until(asked, f"{n} workers stopping after the run in hand", pool)


def test_a_second_sigterm_stops_the_runs_and_leaves_none_running(
    fleet, root, redis_conn, pools, tmp_path
):
    """A second SIGTERM (more than a second later: RQ takes one within a second for the same
    signal twice) is the cold shutdown: each worker kills its run's command on the host, marks
    the run failed saying why, frees the host, and exits."""
    pool = pools(3)
    listening(pool, redis_conn, 3)
    tag = f"remora-fanout-{os.getpid()}"
    params = {"command": f"exec -a {tag} sleep 300", "changes_host": True}
    fan = launch_many(root, get("adhoc"), fleet, params)
    ids = [r.pk for r in fan.runs]
    running = JobRun.objects.filter(pk__in=ids, state=RunState.RUNNING)
    until(lambda: running.count() == 3, "all three runs running", pool)
    until(lambda: _sleeps(tag) == 3, "the three commands running on the hosts", pool)

    pool.send_signal(signal.SIGTERM)  # warm: the runs would go on for 300 s
    stopping(pool, redis_conn, 3)
    time.sleep(1.1)  # RQ takes a second signal within a second for the same one
    pool.send_signal(signal.SIGTERM)  # cold

    until(lambda: not running.exists(), "the runs stopped", seconds=60)
    assert pool.wait(timeout=60) == 0, pool.stdout.read().decode()[-3000:]
    runs = ended(fan.runs)
    assert [r.state for r in runs] == [RunState.FAILED] * 3
    assert all(r.error.startswith("worker stopped during the run") for r in runs)
    assert not JobRun.objects.filter(state=RunState.RUNNING).exists()
    until(lambda: _sleeps(tag) == 0, "the commands killed on the hosts", seconds=30)
    from jobs.models import HostLock

    assert not HostLock.objects.exists()


def _sleeps(tag: str) -> int:
    found = subprocess.run(["pgrep", "-c", "-f", f"^{tag} "], capture_output=True, text=True)
    return int(found.stdout.strip() or 0)


def test_a_dead_worker_is_replaced_and_the_workers_stop_when_the_supervisor_dies(redis_conn, pools):
    pool = pools(2)
    first = listening(pool, redis_conn, 2)
    victim = sorted(first)[0]
    os.kill(victim, signal.SIGKILL)
    again = until(lambda: (c := children_of(pool.pid)) - first and len(c) == 2 and c,
                  "a worker started in its place", pool)  # fmt: skip
    assert victim not in again and pool.poll() is None

    os.kill(pool.pid, signal.SIGKILL)  # the supervisor alone
    pool.wait(timeout=10)
    # Its workers got SIGTERM from the kernel (a warm shutdown: they were idle) and exited.
    until(lambda: not any(alive(pid) for pid in again), "the workers exited")


def alive(pid: int) -> bool:
    """Whether `pid` runs (an exited orphan may stay a zombie until init reaps it)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] not in "ZX"


def test_a_pool_whose_workers_die_at_start_gives_up_and_says_so(monkeypatch):
    """Five workers in a row that die right after their start (here: exit status 3, as a
    worker that cannot reach Redis would) stop the pool with exit status 1, not a restart loop
    forever. (The pool forks this process; each worker exits at once.)"""
    from jobs import pool as pooling

    monkeypatch.setattr(pooling, "BACKOFF", 0.01)
    assert pooling.Pool(2, lambda: 3).run() == 1


def test_a_burst_pool_ends_with_its_workers_and_their_exit_status():
    from jobs import pool as pooling

    assert pooling.Pool(3, lambda: None, burst=True).run() == 0
    assert pooling.Pool(2, lambda: 4, burst=True).run() == 4
