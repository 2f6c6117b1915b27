"""The run state machine: one table of allowed moves, one function that makes them (a conditional
update and its audit event), and no other code in jobs/ that writes a run's state."""

import ast
import re
import uuid
from pathlib import Path

import pytest
from django.db import transaction

from jobs.models import FINISHED, JobRun, RunState
from jobs.states import TRANSITIONS, IllegalTransition, allowed, transition
from remora_admin.audit.models import AuditEvent

JOBS = Path(__file__).resolve().parents[2] / "jobs"
S = RunState


def _run(host, user, state):
    return JobRun.objects.create(
        batch=uuid.uuid4(),
        recipe="host_health",
        script="uptime",
        host=host,
        timeout=60,
        requested_by=user,
        state=state,
    )


def test_the_table_names_every_state_and_a_finished_run_goes_nowhere():
    assert set(TRANSITIONS) == set(RunState.values)
    for state in FINISHED:
        assert TRANSITIONS[state] == frozenset(), f"{state} must be final"
    for before in RunState.values:
        for after in RunState.values:
            if before in FINISHED:
                assert not allowed(before, after)
    assert not allowed(S.LOST, S.SUCCEEDED)  # a late worker never turns lost into succeeded
    assert not allowed(S.CANCELLED, S.RUNNING)
    assert not allowed(S.REJECTED, S.QUEUED)  # a rejected run cannot be approved later
    assert not allowed(S.AWAITING_APPROVAL, S.RUNNING)  # no run skips its approval
    assert not any(S.AWAITING_APPROVAL in targets for targets in TRANSITIONS.values())
    assert TRANSITIONS[S.AWAITING_APPROVAL] == {S.QUEUED, S.REJECTED, S.CANCELLED}
    assert TRANSITIONS[S.QUEUED] == {S.RUNNING, S.WAITING, S.CANCELLED}
    assert TRANSITIONS[S.WAITING] == {S.QUEUED, S.CANCELLED}  # a waiting run never runs unqueued
    assert TRANSITIONS[S.RUNNING] == {S.SUCCEEDED, S.FAILED, S.CANCELLED, S.TIMED_OUT, S.LOST}


@pytest.mark.django_db
def test_a_legal_move_changes_the_row_and_records_one_event_with_both_states(lab_host, carol):
    run = _run(lab_host, carol, S.QUEUED)

    assert transition(run, S.CANCELLED, actor=carol, details={"why": "test"})

    assert JobRun.objects.get(pk=run.pk).state == S.CANCELLED
    assert run.state == S.CANCELLED  # the caller's object follows
    [event] = AuditEvent.objects.filter(target_id=str(run.pk))
    assert (event.action, event.actor_name, event.zone) == ("run.cancelled", "carol", "lab")
    assert event.details == {"from": "queued", "to": "cancelled", "why": "test"}


@pytest.mark.django_db
def test_a_move_from_a_state_the_run_has_left_changes_nothing_and_records_nothing(lab_host, carol):
    lost = _run(lab_host, carol, S.LOST)
    stale = JobRun.objects.get(pk=lost.pk)
    stale.state = S.RUNNING  # what a late worker still believes (in memory only)

    assert transition(stale, S.SUCCEEDED, expect=[S.RUNNING], exit_code=0) is False

    row = JobRun.objects.get(pk=lost.pk)
    assert (row.state, row.exit_code) == (S.LOST, None)
    assert not AuditEvent.objects.filter(target_id=str(lost.pk)).exists()


@pytest.mark.django_db
def test_a_move_the_table_forbids_is_refused_before_touching_the_database(lab_host, carol):
    run = _run(lab_host, carol, S.SUCCEEDED)

    with pytest.raises(IllegalTransition):
        transition(run, S.RUNNING, expect=[S.SUCCEEDED])
    with pytest.raises(IllegalTransition):
        transition(run, S.AWAITING_APPROVAL)  # nothing ever moves back to waiting
    with pytest.raises(IllegalTransition):
        transition(run, S.FAILED, state=S.QUEUED)  # the state is `to`, never a field

    assert JobRun.objects.get(pk=run.pk).state == S.SUCCEEDED
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_of_two_racing_moves_only_the_first_wins_and_only_it_is_recorded(lab_host, carol):
    run = _run(lab_host, carol, S.RUNNING)
    worker_view, reaper_view = JobRun.objects.get(pk=run.pk), JobRun.objects.get(pk=run.pk)

    assert transition(reaper_view, S.LOST, actor_name="reaper")
    assert not transition(worker_view, S.SUCCEEDED, actor_name="worker")

    assert JobRun.objects.get(pk=run.pk).state == S.LOST
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["run.lost"]


@pytest.mark.django_db(transaction=True)
def test_a_move_that_rolls_back_leaves_no_event(lab_host, carol):
    run = _run(lab_host, carol, S.QUEUED)

    with pytest.raises(RuntimeError), transaction.atomic():
        transition(run, S.RUNNING, actor_name="worker", audit_action="run.started")
        raise RuntimeError("the caller's transaction fails after the move")

    assert JobRun.objects.get(pk=run.pk).state == S.QUEUED
    assert not AuditEvent.objects.exists()


# --- No other code writes a run's state -----------------------------------------------------


def _state_writes(tree: ast.AST) -> list[tuple[int, str]]:
    """Every place that writes `state`: x.state = ..., .update/.create/...(state=...),
    .update(**{"state": ...}), save(update_fields=[..."state"...]), bulk_update(..., ["state"])."""
    writers = {"update", "create", "update_or_create", "get_or_create", "bulk_create"}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "state":
                    found.append((node.lineno, "assigns .state"))
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else ""
        setter = isinstance(node.func, ast.Name) and node.func.id == "setattr"
        if setter and len(node.args) > 1 and getattr(node.args[1], "value", None) == "state":
            found.append((node.lineno, "setattr(..., 'state', ...)"))
        for keyword in node.keywords:
            if keyword.arg == "state" and name in writers:
                found.append((node.lineno, f".{name}(state=...)"))
            if keyword.arg is None and name in writers and isinstance(keyword.value, ast.Dict):
                keys = [getattr(k, "value", None) for k in keyword.value.keys]
                if "state" in keys:
                    found.append((node.lineno, f".{name}(**{{'state': ...}})"))
            if keyword.arg == "update_fields" and "'state'" in ast.unparse(keyword.value):
                found.append((node.lineno, "save(update_fields=['state'])"))
        if name == "bulk_update" and any("'state'" in ast.unparse(a) for a in node.args[1:]):
            found.append((node.lineno, "bulk_update(..., ['state'])"))
    return found


def test_the_scan_finds_each_kind_of_state_write():
    sample = (
        "run.state = 'x'\n"
        "JobRun.objects.filter(pk=1).update(state='x')\n"
        "JobRun.objects.filter(pk=1).update(**{'state': 'x'})\n"
        "run.save(update_fields=['state'])\n"
        "JobRun.objects.bulk_update(runs, ['state'])\n"
        "setattr(run, 'state', 'x')\n"
        "JobRun.objects.filter(state='x').update(error='')\n"  # reading by state is fine
    )
    assert [line for line, _ in _state_writes(ast.parse(sample))] == [1, 2, 3, 4, 5, 6]


def test_only_the_state_machine_writes_a_runs_state():
    offenders = []
    for path in sorted(JOBS.rglob("*.py")):
        relative = path.relative_to(JOBS).as_posix()
        if relative == "states.py" or relative.startswith("migrations/"):
            continue
        for line, what in _state_writes(ast.parse(path.read_text(), str(path))):
            offenders.append((relative, line, what))
    # The one exception: launch creates each run in its initial state.
    creations = [o for o in offenders if o[0] == "launch.py" and o[2] == ".create(state=...)"]
    assert len(creations) == 1
    assert [o for o in offenders if o not in creations] == []


def _call_arguments(text: str, start: int) -> str:
    """The text between the parenthesis at `start` and the one that closes it."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1 : i]
    return text[start + 1 :]


def test_a_plain_grep_finds_state_updates_only_in_the_state_machine():
    """The same rule as a grep, for whoever reads this without the parser: no `.update(` call
    with `state=` among its arguments outside jobs/states.py."""
    hits = []
    for path in sorted(JOBS.rglob("*.py")):
        if path.name == "states.py" or "migrations" in path.parts:
            continue
        text = path.read_text()
        for match in re.finditer(r"\.(update|bulk_update|update_or_create)\(", text):
            arguments = _call_arguments(text, match.end() - 1)
            if re.search(r"\bstate\s*=(?!=)|[\"']state[\"']", arguments):
                hits.append((path.name, text.count("\n", 0, match.start()) + 1))
    assert hits == []
