"""Who is working: the job workers RQ knows (on every machine that joined the queue), each with
the run it is on, and what is waiting for them.

RQ keeps a registry of live workers in Redis (name, machine, pid, last heartbeat); a run's row
names the worker that claimed it as `machine:pid` (jobs/tasks.worker_name), which ties the two.
A worker that stopped saying it is alive for `faults.WORKER_SILENT` is shown as silent: RQ
drops it from the registry only minutes later, and the reaper marks its run lost meanwhile.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Count
from django.utils import timezone
from redis.exceptions import RedisError
from rq.worker import Worker

from . import queue
from .faults import WORKER_SILENT
from .models import JobRun, RunState

RECENT = timedelta(hours=24)


@dataclass(frozen=True)
class WorkerRow:
    name: str  # `machine:pid`, as runs name it
    machine: str
    pid: int
    state: str  # "busy", "idle", "suspended" (RQ's word), or "silent" (no heartbeat)
    since: datetime | None
    last_heard: datetime | None
    run: JobRun | None
    heard_seconds: int | None = None  # how long ago it was last heard, when it was


@dataclass
class Machine:
    name: str
    workers: list[WorkerRow] = field(default_factory=list)
    finished_recently: int = 0  # runs its workers ended in the last 24 hours

    @property
    def busy(self) -> int:
        return sum(w.state == "busy" for w in self.workers)


@dataclass
class Snapshot:
    machines: list[Machine]
    queued: int  # runs queued in the database, not yet taken
    oldest_queued: datetime | None
    waiting_for_host: int
    queue_error: str = ""  # Redis did not answer: what it said

    @property
    def workers(self) -> list[WorkerRow]:
        return [w for m in self.machines for w in m.workers]

    @property
    def alive(self) -> int:
        return sum(w.state != "silent" for w in self.workers)


def _state(worker: Worker, now: datetime, run: JobRun | None) -> str:
    heard = worker.last_heartbeat
    if heard is None or now - _aware(heard) > WORKER_SILENT:
        return "silent"
    if run is not None:
        return "busy"
    said = worker.get_state()  # busy with a job that is not a run (a plan's next step)
    return said if said in ("busy", "suspended") else "idle"


def _aware(moment: datetime) -> datetime:
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def snapshot() -> Snapshot:
    """The workers by machine, their runs, and the queue's backlog (from the database: it is
    the truth about runs; Redis only delivers them)."""
    now = timezone.now()
    queued = JobRun.objects.filter(state=RunState.QUEUED)
    backlog = {
        "queued": queued.count(),
        "oldest_queued": queued.order_by("queued_at").values_list("queued_at", flat=True).first(),
        "waiting_for_host": JobRun.objects.filter(state=RunState.WAITING).count(),
    }
    try:
        found = Worker.all(queue=queue.queue())
    except (RedisError, OSError) as exc:
        return Snapshot(machines=[], queue_error=str(exc), **backlog)
    running = {
        run.worker: run
        for run in JobRun.objects.filter(state=RunState.RUNNING).select_related("host")
    }
    machines: dict[str, Machine] = {}
    for worker in found:
        name = f"{worker.hostname}:{worker.pid}"
        run = running.get(name)
        row = WorkerRow(
            name=name,
            machine=worker.hostname or "?",
            pid=worker.pid or 0,
            state=_state(worker, now, run),
            since=_aware(worker.birth_date) if worker.birth_date else None,
            last_heard=_aware(worker.last_heartbeat) if worker.last_heartbeat else None,
            run=run,
            heard_seconds=(
                max(0, int((now - _aware(worker.last_heartbeat)).total_seconds()))
                if worker.last_heartbeat
                else None
            ),
        )
        machines.setdefault(row.machine, Machine(row.machine)).workers.append(row)
    finished = Counter()
    recent = (
        JobRun.objects.filter(finished_at__gte=now - RECENT)
        .exclude(worker="")
        .values("worker")
        .annotate(n=Count("id"))
    )
    for entry in recent:
        finished[entry["worker"].rsplit(":", 1)[0]] += entry["n"]
    for machine in machines.values():
        machine.workers.sort(key=lambda w: w.pid)
        machine.finished_recently = finished[machine.name]
    return Snapshot(machines=sorted(machines.values(), key=lambda m: m.name), **backlog)
