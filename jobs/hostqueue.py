"""One host-changing run at a time on a host, strictly in launch order, with no worker waiting.

A worker that takes a host-changing run whose host is busy (another run holds the host's lock,
or an earlier host-changing run is still in line) does not wait for it: the run moves to
"waiting for host", with its place in line in its note, and the worker goes on with other work.
When the host is freed (its run ended in any way: finished, cancelled, lost), the first run in
line moves back to queued and onto the queue. The line's order is launch order: the time a run
was queued (launched, or approved), then its number.

Every decision about a host's line is taken with the host's row locked, first, before any run
row: the claim, the end of a run, a cancel and the reaper all take that order, so they never
deadlock and never both take a host.
"""

from contextlib import contextmanager

from django.db import transaction

from hosts.models import Host

from . import queue
from .models import HostLock, JobRun, RunState
from .states import transition

S = RunState


@contextmanager
def host_locked(host_id: int):
    """A transaction holding the host's row: decisions about its line happen one at a time."""
    with transaction.atomic():
        Host.objects.select_for_update().filter(pk=host_id).values_list("pk", flat=True).first()
        yield


def line(host_id: int):
    """The host-changing runs in line for the host, first first: queued (on their way to a
    worker) or waiting."""
    return JobRun.objects.filter(
        host_id=host_id, changes_host=True, state__in=[S.QUEUED, S.WAITING]
    ).order_by("queued_at", "pk")


def holder(host_id: int) -> int | None:
    return HostLock.objects.filter(host_id=host_id).values_list("run_id", flat=True).first()


def claim(run: JobRun, **fields) -> str:
    """Start a host-changing run if the host is free and it is first in line ("running", with
    the host's lock taken), else put it in line ("waiting"); "gone" when it was no longer
    queued (cancelled, or a second delivery)."""
    with host_locked(run.host_id):
        held_by = holder(run.host_id)
        first = line(run.host_id).values_list("pk", flat=True).first()
        if held_by is None and first == run.pk:
            if not transition(run, S.RUNNING, expect=[S.QUEUED], **fields):
                return "gone"
            HostLock.objects.create(host_id=run.host_id, run=run)
            _renote(run.host_id)
            return "running"
        moved = transition(
            run, S.WAITING, expect=[S.QUEUED], actor_name="worker",
            audit_action="run.waiting_for_host",
            details={"held_by": held_by, "first_in_line": first},
        )  # fmt: skip
        if not moved:
            return "gone"
        promote_next(run.host_id)
        _renote(run.host_id)
        return "waiting"


def promote_next(host_id: int) -> JobRun | None:
    """If the host is free and the first run in line is waiting, queue it (call with the host
    locked). A first run that is already queued is on its way: it claims the host itself."""
    if holder(host_id) is not None:
        return None
    first = line(host_id).select_related("host__zone").first()
    if first is None or first.state != S.WAITING:
        return None
    moved = transition(
        first, S.QUEUED, expect=[S.WAITING], actor_name="worker",
        audit_action="run.next_in_line", status_note="next in line: queued",
    )  # fmt: skip
    if not moved:
        return None
    transaction.on_commit(lambda: queue.enqueue(first.pk, first.timeout))
    return first


def release(run: JobRun) -> None:
    """Free the host's lock held by `run` (if it holds it) and move the line on (call with the
    host locked)."""
    HostLock.objects.filter(host_id=run.host_id, run_id=run.pk).delete()
    move_on(run.host_id)


def move_on(host_id: int) -> None:
    """Queue the next in line if the host is free; renumber the places (host locked)."""
    promote_next(host_id)
    _renote(host_id)


def _renote(host_id: int) -> None:
    """Each waiting run's note names the current holder and its place in line."""
    held_by = holder(host_id)
    waiting = list(line(host_id).values_list("pk", "state"))
    for place, (pk, state) in enumerate(waiting):
        if state != S.WAITING:
            continue
        first = waiting[0][0]
        now = f"run #{held_by} holds the host" if held_by else f"run #{first} goes first"
        ahead = "first in line" if place == 0 else f"{place} ahead in line"
        JobRun.objects.filter(pk=pk, state=S.WAITING).update(
            status_note=f"waiting for host: {now}; {ahead}"
        )


def place_in_line(run: JobRun) -> int | None:
    """How many runs are ahead of a waiting run (None when it is not in line)."""
    ids = list(line(run.host_id).values_list("pk", flat=True))
    return ids.index(run.pk) if run.pk in ids else None
