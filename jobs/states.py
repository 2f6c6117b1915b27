"""The run state machine: which state may follow which, and the one function that moves a run.

Every change of a run's state goes through `transition`: a conditional UPDATE (the row changes
only if it is still in a state the table allows to reach the new one) and its audit event, in one
transaction. Two processes racing for the same run (the worker finishing it and the reaper
marking it lost, two people approving it, a cancel and a claim) cannot both win: the loser's
UPDATE matches no row, `transition` returns False and records nothing.

Nothing else in jobs/ writes `state=`; a test reads the code to hold that. The only exception is
the initial state a run is created with, in `launch`.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.db.models.expressions import Combinable
from django.http import HttpRequest

from remora_admin.audit.log import record

from .models import FINISHED, JobRun, RunState

S = RunState

# From each state, the states a run may move to. A finished state goes nowhere, ever: a run
# marked lost stays lost even if its worker comes back and reports success.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.AWAITING_APPROVAL: frozenset({S.QUEUED, S.REJECTED, S.CANCELLED}),
    S.QUEUED: frozenset({S.RUNNING, S.WAITING, S.CANCELLED}),
    # A host-changing run whose host is busy waits in line (jobs/hostqueue.py), in no worker.
    S.WAITING: frozenset({S.QUEUED, S.CANCELLED}),
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED, S.TIMED_OUT, S.LOST}),
    **{state: frozenset() for state in FINISHED},
}
INITIAL = frozenset({S.AWAITING_APPROVAL, S.QUEUED})  # what `launch` may create a run in


class IllegalTransition(ValueError):
    """A caller asked for a move the table never allows (a bug, not a race)."""


def allowed(before: str, after: str) -> bool:
    return after in TRANSITIONS.get(before, frozenset())


def sources(to: str) -> list[str]:
    """The states from which a run may move to `to`, in the table's order."""
    return [state for state, targets in TRANSITIONS.items() if to in targets]


def transition(
    run: JobRun,
    to: str,
    *,
    expect: Iterable[str] | None = None,
    where: Mapping[str, Any] | None = None,
    actor: Any = None,
    actor_name: str = "",
    request: HttpRequest | None = None,
    audit_action: str = "",
    details: Mapping[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """Move `run` to state `to` if it is still in one of the `expect`ed states (by default every
    state the table allows to reach `to`), setting `fields` with it, and audit the move.

    `where` adds conditions on the row (the reaper: "and its heartbeat is still old"). Returns
    True when the run moved (the in-memory `run` is updated too), False when it was no longer in
    an allowed state: then nothing changed and nothing was recorded.
    """
    legal = sources(to)
    if not legal:
        raise IllegalTransition(f"No run ever moves to {to!r}.")
    wanted = legal if expect is None else [str(state) for state in expect]
    illegal = [state for state in wanted if state not in legal]
    if illegal:
        raise IllegalTransition(f"A run never moves from {illegal} to {to!r}.")
    if "state" in fields:
        raise IllegalTransition("Pass the new state as `to`, not as a field.")
    with transaction.atomic():
        # One conditional UPDATE per possible source state (one or two): the first that matches
        # tells exactly which state the run left, for the audit event.
        before = None
        for state in wanted:
            rows = JobRun.objects.filter(pk=run.pk, state=state, **dict(where or {}))
            if rows.update(state=to, **fields):
                before = state
                break
        if before is None:
            return False
        event = {"from": before, "to": str(to), **dict(details or {})}
        record(
            audit_action or f"run.{to}",
            request=request,
            actor=actor,
            actor_name=actor_name,
            target=run,
            zone=run.host.zone.name,
            details=event,
        )
    run.state = to
    for name, value in fields.items():
        if not isinstance(value, Combinable):  # an F() expression is not a value to keep
            setattr(run, name, value)
    return True
