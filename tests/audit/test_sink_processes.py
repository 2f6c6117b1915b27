"""The sink receives every event exactly once, in order, with its hash, also the events written
by other processes: a real `manage.py remora_worker` (runs against a real sshd, the chain's
verification), a real `manage.py remora_ticker` (the reaper, the reconciler, a due schedule,
the daily verification asked, its checkpoint) and plain writer processes, all recording while
this process records too, all with REMORA_AUDIT_SINK pointing at one file."""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from jobs import launch as launching
from jobs.models import FINISHED, JobRun, RunState, Schedule
from jobs.recipes import get
from remora_admin.audit import sink
from remora_admin.audit.log import record
from remora_admin.audit.models import AuditEvent
from tests.jobs.conftest import credential, host_for, zone  # noqa: F401 - fixtures
from tests.jobs.worker_process import ROOT, stop, worker_env

pytestmark = pytest.mark.django_db(transaction=True)  # the children see only committed rows

SINK_FAILED = "The audit sink could not be written"

WRITER = """
import os, time
from pathlib import Path
from remora_admin.audit.log import record
go, halt, name = Path(os.environ["GO"]), Path(os.environ["HALT"]), os.environ["WRITER"]
while not go.exists():
    time.sleep(0.01)
count = 0
while not halt.exists() and count < 3000:
    record("service.updated", actor_name=name, details={"i": count, "pid": os.getpid()})
    count += 1
print(f"wrote {count}")
"""


@pytest.fixture
def off_box(tmp_path, settings):
    """One sink file for this process and every child process."""
    path = tmp_path / "audit-sink.jsonl"
    settings.REMORA_AUDIT_SINK = f"file:{path}"
    return path


@pytest.fixture
def lab_host(sshd_host, zone, credential):  # noqa: F811 - the fixtures imported above
    return host_for(sshd_host, zone, credential)


@pytest.fixture
def root(off_box):
    # The worker process knows only the built-in recipes: the ad-hoc one needs a superadmin.
    return get_user_model().objects.create_superuser("root-admin", "r@example.org", "x")


@pytest.fixture
def children(off_box, tmp_path):
    """Start `manage.py ...` children with the test database, Redis and the sink; each is
    stopped at the end (SIGKILL only if it is still alive)."""
    started: list[subprocess.Popen] = []

    def start(*command: str, **extra_env: str) -> subprocess.Popen:
        env = {**worker_env(), "REMORA_AUDIT_SINK": f"file:{off_box}", **extra_env}
        log_path = tmp_path / f"child-{len(started)}-{command[0]}.log"
        with open(log_path, "wb") as log_file:
            child = subprocess.Popen(
                [sys.executable, "manage.py", *command],
                cwd=ROOT,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child.output = lambda: log_path.read_text(errors="replace")
        started.append(child)
        return child

    yield start
    for child in started:
        stop(child)


def terminate(child: subprocess.Popen, seconds: float = 20.0) -> int:
    """A clean stop (SIGTERM: the worker finishes its job, the ticker its tick). RQ's warm
    shutdown can hang joining its pub/sub thread (rq/rq#1613) after its work loop ended (it
    says "unsubscribing"): from there on it writes nothing, so it is then killed."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    deadline, loop_ended = time.monotonic() + seconds, None
    while child.poll() is None:
        if loop_ended is None and "unsubscribing from channel" in child.output():
            loop_ended = time.monotonic()
        if loop_ended is not None and time.monotonic() - loop_ended > 2:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
            return 0
        assert time.monotonic() < deadline, f"did not stop:\n{child.output()[-3000:]}"
        time.sleep(0.1)
    return child.returncode


def wait_for(condition, what: str, processes=(), seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        for child in processes:
            if child.poll() is not None:
                raise AssertionError(f"{what}: a child exited early:\n{child.output()[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {seconds} s")


def wait_listening(worker: subprocess.Popen, redis_conn) -> None:
    from rq import Worker

    wait_for(lambda: Worker.all(connection=redis_conn), "the worker listening", [worker], 20)


def adhoc(user, host, command: str) -> JobRun:
    params = {"command": command, "changes_host": False}
    return launching.launch(user, get("adhoc"), [host], params)[0]


def _lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def assert_every_event_reached_the_sink_once_in_order(path: Path) -> tuple[list, list]:
    """The sink file against the database: each event's line exactly once, in sequence order,
    with the row's hash, previous hash, action and actor; each checkpoint on a real event."""
    texts = _lines_of(path)
    entries = []
    for number, text in enumerate(texts, 1):
        try:
            entries.append(json.loads(text))
        except ValueError:
            raise AssertionError(f"line {number} of the sink is torn: {text[:200]!r}") from None
    marks = [e["checkpoint"] for e in entries if "checkpoint" in e]
    lines = [e for e in entries if "checkpoint" not in e]
    rows = list(
        AuditEvent.objects.order_by("sequence").values(
            "sequence", "hash", "previous_hash", "action", "actor_name"
        )
    )
    held = [r["sequence"] for r in rows]
    sent = [e["sequence"] for e in lines]
    twice = sorted(s for s, n in Counter(sent).items() if n > 1)
    assert not twice, f"events sent more than once: {twice}"
    missing = sorted(set(held) - set(sent))
    assert not missing, f"events never sent: {missing} (of {len(held)})"
    unknown = sorted(set(sent) - set(held))
    assert not unknown, f"lines of events the database does not hold: {unknown}"
    assert sent == held, "the sink's lines are not in sequence order"
    for line, row in zip(lines, rows, strict=True):
        assert line["hash"] == row["hash"], f"#{row['sequence']}: hash differs"
        assert line["previous_hash"] == row["previous_hash"], f"#{row['sequence']}: link differs"
        assert (line["action"], line["actor"]) == (row["action"], row["actor_name"])
    by_sequence = {r["sequence"]: r["hash"] for r in rows}
    for mark in marks:
        assert by_sequence.get(mark["sequence"]) == mark["hash"], f"checkpoint {mark} is wrong"
    assert sink.compare().first_rewritten is None
    return lines, marks


def assert_no_sink_failure(caplog, *processes) -> None:
    failures = [r.getMessage() for r in caplog.records if SINK_FAILED in r.getMessage()]
    assert not failures, f"this process could not write the sink: {failures}"
    for child in processes:
        assert SINK_FAILED not in child.output(), child.output()[-3000:]


def test_the_worker_the_ticker_and_the_console_each_reach_the_sink_once_in_order(
    lab_host, root, redis_conn, off_box, children, caplog
):
    caplog.set_level(logging.WARNING)
    now = timezone.now()
    # What the ticker finds: a run whose worker died, a run Redis lost, a schedule due now.
    died = adhoc(root, lab_host, "true")
    lost_in_redis = adhoc(root, lab_host, "echo delivered again")
    redis_conn.flushdb()
    JobRun.objects.filter(pk=died.pk).update(
        state=RunState.RUNNING, heartbeat_at=now - timedelta(minutes=10), worker="gone:1"
    )
    JobRun.objects.filter(pk=lost_in_redis.pk).update(queued_at=now - timedelta(seconds=20))
    due = now.replace(second=0, microsecond=0)  # due once: the next time is a year away
    schedule = Schedule.objects.create(
        name="once-now",
        recipe="adhoc",
        params={"command": "echo scheduled", "changes_host": False},
        cron=f"{due.minute} {due.hour} {due.day} {due.month} *",
        owner=root,
        checked_until=due - timedelta(seconds=1),
    )
    schedule.hosts.add(lab_host)

    ticker = children("remora_ticker", "--interval", "0.5")

    def ticker_did_its_first_tick():
        actions = set(AuditEvent.objects.values_list("action", flat=True))
        wanted = {"run.lost", "run.redelivered", "schedule.fired", "audit.verify_requested"}
        return wanted <= actions and any("checkpoint" in t for t in _lines_of(off_box))

    # No worker yet: what the ticker does is the ticker's alone.
    wait_for(ticker_did_its_first_tick, "the ticker's first tick", [ticker])
    worker = children("remora_worker")
    wait_listening(worker, redis_conn)

    # This process records in a loop while the worker runs and finishes runs (and records).
    console, launched = [], []
    deadline = time.monotonic() + 30
    i = 0
    while True:
        console.append(record("service.updated", actor_name="console", details={"i": i}).sequence)
        if i == 5:
            launched = [adhoc(root, lab_host, f"sleep 0.2; echo run-{n}") for n in range(4)]
        runs_done = (
            launched and not JobRun.objects.exclude(state__in=FINISHED).exclude(pk=died.pk).exists()
        )
        verified = {"audit.verified", "audit.chain_broken"}
        if runs_done and AuditEvent.objects.filter(action__in=verified).exists():
            break
        assert time.monotonic() < deadline, (
            f"not finished in 30 s: {list(JobRun.objects.values_list('pk', 'state', 'error'))}, "
            f"verified: {AuditEvent.objects.filter(action='audit.verified').exists()}\n"
            f"worker: {worker.output()[-3000:]}\nticker: {ticker.output()[-3000:]}"
        )
        assert worker.poll() is None and ticker.poll() is None
        i += 1
        time.sleep(0.02)
    for more in range(5):
        details = {"i": i + 1 + more}
        console.append(record("service.updated", actor_name="console", details=details).sequence)
    time.sleep(1.5)  # the ticker ticks again (its flush is the catch-up for a failed one)
    assert terminate(worker) == 0, worker.output()[-3000:]
    assert terminate(ticker) == 0, ticker.output()[-3000:]

    lines, marks = assert_every_event_reached_the_sink_once_in_order(off_box)
    assert_no_sink_failure(caplog, worker, ticker)
    print(
        f"{len(lines)} events and {len(marks)} checkpoints sent once each: {
            Counter(e['actor'] for e in lines)
        }"
    )

    events = {(e["action"], e["target"]): e for e in lines}
    runs = JobRun.objects.exclude(pk=died.pk)
    scheduled = runs.filter(batch__in=schedule.occurrences.values("batch"))
    assert scheduled.count() == 1 and lost_in_redis.pk in runs.values_list("pk", flat=True)
    assert runs.count() == len(launched) + 2
    for run in runs:
        assert run.state == RunState.SUCCEEDED, run.error
        started = events[("run.started", f"jobs.jobrun:{run.pk}")]
        # Written by the worker process (its pid is in the event), sent off the box once.
        assert started["details"]["worker"].endswith(f":{worker.pid}")
        assert events[("run.succeeded", f"jobs.jobrun:{run.pk}")]["actor"] == "worker"
    # The ticker's: the reaper, the reconciler, the scheduler, the daily verification asked.
    assert events[("run.lost", f"jobs.jobrun:{died.pk}")]["actor"] == "reaper"
    assert events[("run.redelivered", f"jobs.jobrun:{lost_in_redis.pk}")]["actor"] == "reconciler"
    assert [e["actor"] for e in lines if e["action"] == "schedule.fired"] == ["scheduler"]
    assert [e["actor"] for e in lines if e["action"] == "audit.verify_requested"] == [
        "ticker (daily)"
    ]
    # The worker's verification of the chain, against the sink, while this process wrote.
    verified = [e for e in lines if e["action"] in {"audit.verified", "audit.chain_broken"}]
    assert [(e["action"], e["actor"]) for e in verified] == [("audit.verified", "verifier")], (
        f"the worker's verification, run while this process recorded, found the intact chain "
        f"broken: {[e['details'] for e in verified]}"
    )
    assert verified[0]["details"]["copy_checked"] > 0
    assert len(marks) >= 2  # the ticker's first checkpoint and the verification's
    # The worker finished runs while this process was recording: its events lie in between.
    mine = {r.pk for r in launched}
    worker_sequences = [
        e["sequence"]
        for e in lines
        if e["action"] in {"run.started", "run.succeeded"}
        and int(e["target"].rpartition(":")[2]) in mine
    ]
    assert len(worker_sequences) == 2 * len(mine)
    assert min(console) < min(worker_sequences) and max(worker_sequences) < max(console)


def test_processes_recording_at_the_same_time_each_send_every_event_once(
    lab_host, root, redis_conn, off_box, children, tmp_path, caplog
):
    """No ticker here: nothing catches up afterwards, so each writer's own flush must have
    sent its events by the time it returns."""
    caplog.set_level(logging.WARNING)
    go, halt = tmp_path / "go", tmp_path / "halt"
    signals = {"GO": str(go), "HALT": str(halt)}
    writers = [children("shell", "-c", WRITER, WRITER=f"writer-{n}", **signals) for n in range(2)]
    worker = children("remora_worker")
    wait_listening(worker, redis_conn)
    time.sleep(1.0)  # the writers have started Django and wait for the go
    assert all(w.poll() is None for w in writers), writers[0].output()

    go.touch()
    wait_for(
        lambda: (
            AuditEvent.objects.filter(actor_name="writer-1").exists()
            and AuditEvent.objects.filter(actor_name="writer-0").exists()
        ),
        "both writers writing",
        writers,
    )
    runs = [adhoc(root, lab_host, f"echo race-{n}") for n in range(6)]
    deadline = time.monotonic() + 30
    console = 0
    while JobRun.objects.filter(pk__in=[r.pk for r in runs]).exclude(state__in=FINISHED).exists():
        record("service.updated", actor_name="console", details={"i": console})
        console += 1
        assert time.monotonic() < deadline, "the runs did not finish"
    for _ in range(20):  # and some more while the writers still write
        record("service.updated", actor_name="console", details={"i": console})
        console += 1
    halt.touch()
    for writer in writers:
        assert writer.wait(timeout=30) == 0, writer.output()[-3000:]
    assert terminate(worker) == 0, worker.output()[-3000:]

    lines, _ = assert_every_event_reached_the_sink_once_in_order(off_box)
    assert_no_sink_failure(caplog, worker, *writers)

    by_actor = Counter(e["actor"] for e in lines)
    assert by_actor["console"] == console
    for n, writer in enumerate(writers):
        assert f"wrote {by_actor[f'writer-{n}']}" in writer.output()
        assert by_actor[f"writer-{n}"] >= 20
    for run in runs:
        run.refresh_from_db()
        assert run.state == RunState.SUCCEEDED, run.error
    started = [e for e in lines if e["action"] == "run.started"]
    assert len(started) == len(runs)
    assert all(e["details"]["worker"].endswith(f":{worker.pid}") for e in started)
    # They really wrote at the same time: the writers' events interleave in the chain.
    writing = [e["actor"] for e in lines if e["actor"] in {"console", "writer-0", "writer-1"}]
    switches = sum(1 for a, b in zip(writing, writing[1:], strict=False) if a != b)
    print(
        f"{len(lines)} events sent once each: {by_actor}; the writers took turns {switches} times"
    )
    assert switches >= 20, f"the writers took turns only {switches} times"
    # And while the worker recorded: its events lie inside each writer's span.
    worker_sequences = [e["sequence"] for e in lines if e["actor"] == "worker"]
    assert len(worker_sequences) == 2 * len(runs)
    for n in range(len(writers)):
        theirs = [e["sequence"] for e in lines if e["actor"] == f"writer-{n}"]
        assert min(theirs) < min(worker_sequences) and max(worker_sequences) < max(theirs)
