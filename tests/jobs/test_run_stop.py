"""Stopping runs: the remote processes really die, whether by timeout or by cancel."""

import os
import threading
import time

import pytest
from django.db import connections

from jobs import launch as launching
from jobs.models import JobRun, RunState
from jobs.tasks import execute_run

pytestmark = pytest.mark.django_db(transaction=True)


def _sleeper(make_recipe, tmp_path, name, **options):
    """A recipe whose shell and background child write their PIDs, then wait a long time."""
    shell, child = tmp_path / f"{name}.shell", tmp_path / f"{name}.child"
    recipe = make_recipe(
        name,
        lambda p: f"echo $$ > {shell}; sleep 300 & echo $! > {child}; wait",
        **options,
    )
    return recipe, shell, child


def _wait_for(path, seconds=15.0) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def _gone(pid: int, seconds=5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _in_thread(run_id: int) -> threading.Thread:
    def work():
        try:
            execute_run(run_id)
        finally:
            connections.close_all()

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def test_a_run_past_its_timeout_is_killed_on_the_host(lab_host, carol, make_recipe, tmp_path):
    recipe, shell, child = _sleeper(make_recipe, tmp_path, "sleeps_too_long", timeout=2)
    [run] = launching.launch(carol, recipe, [lab_host], {})

    execute_run(run.pk)

    run.refresh_from_db()
    assert run.state == RunState.TIMED_OUT
    assert "timeout" in run.error
    assert _gone(int(shell.read_text())), "the script's shell survived the timeout"
    assert _gone(int(child.read_text())), "the script's child survived the timeout"


def test_cancelling_a_running_run_kills_its_processes_on_the_host(
    lab_host, carol, make_recipe, tmp_path
):
    recipe, shell, child = _sleeper(make_recipe, tmp_path, "sleeps_until_cancelled")
    [run] = launching.launch(carol, recipe, [lab_host], {})
    thread = _in_thread(run.pk)
    shell_pid, child_pid = _wait_for(shell), _wait_for(child)

    assert launching.cancel(carol, JobRun.objects.get(pk=run.pk)) == "stopping"
    thread.join(timeout=20)

    assert not thread.is_alive()
    run.refresh_from_db()
    assert run.state == RunState.CANCELLED
    assert run.cancel_requested_by == carol
    assert _gone(shell_pid) and _gone(child_pid)


def test_a_queued_run_cancelled_never_runs(lab_host, carol, make_recipe, tmp_path):
    marker = tmp_path / "ran"
    recipe = make_recipe("never_runs", lambda p: f"touch {marker}")
    [run] = launching.launch(carol, recipe, [lab_host], {})

    assert launching.cancel(carol, run) == "cancelled"
    assert execute_run(run.pk).startswith("not queued")

    run.refresh_from_db()
    assert run.state == RunState.CANCELLED
    assert not marker.exists()


def test_a_finished_run_cannot_be_cancelled(lab_host, carol, make_recipe):
    recipe = make_recipe("quick", lambda p: "true")
    [run] = launching.launch(carol, recipe, [lab_host], {})
    execute_run(run.pk)

    with pytest.raises(launching.LaunchRefused, match="already finished"):
        launching.cancel(carol, JobRun.objects.get(pk=run.pk))
