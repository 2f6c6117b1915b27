"""One host-changing run per host at a time; the two-person rule; a revoked grant stops a run."""

import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.utils import timezone

from jobs import launch as launching
from jobs.models import JobRun, RunState
from jobs.recipes import Category
from jobs.tasks import WAITING, execute_run
from remora_admin.access.models import Grant, Role
from remora_admin.audit.models import AuditEvent

from .conftest import output_of


def _thread(run_id):
    def work():
        try:
            execute_run(run_id)
        finally:
            connections.close_all()

    thread = threading.Thread(target=work)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_a_second_host_changing_run_waits_in_line_holding_no_worker(lab_host, carol, make_recipe):
    recipe = make_recipe(
        "change_slowly", lambda p: "date +%s.%N; sleep 1.5; date +%s.%N", changes_host=True
    )
    first, second = (launching.launch(carol, recipe, [lab_host], {})[0] for _ in "ab")

    one = _thread(first.pk)
    while not JobRun.objects.filter(pk=first.pk, lock__isnull=False).exists():
        time.sleep(0.02)
    started = time.monotonic()
    assert execute_run(second.pk) == WAITING  # the worker is free again at once
    assert time.monotonic() - started < 1.0
    second.refresh_from_db()
    assert second.state == RunState.WAITING
    assert second.status_note == f"waiting for host: run #{first.pk} holds the host; first in line"
    one.join(timeout=20)
    second.refresh_from_db()
    assert second.state == RunState.QUEUED  # the host was freed: next in line, on the queue
    assert execute_run(second.pk) == "done"

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.state == second.state == RunState.SUCCEEDED
    first_end = float(output_of(first).split()[1])
    second_start = float(output_of(second).split()[0])
    assert second_start >= first_end
    assert not JobRun.objects.filter(lock__isnull=False).exists()  # both locks released
    actions = AuditEvent.objects.filter(target_id=str(second.pk)).order_by("sequence")
    assert list(actions.values_list("action", flat=True)) == [
        "run.requested", "run.waiting_for_host", "run.next_in_line", "run.started",
        "run.succeeded",
    ]  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_a_waiting_run_can_be_cancelled_and_the_line_moves_on(lab_host, carol, make_recipe):
    recipe = make_recipe("change_quickly", lambda p: "true", changes_host=True)
    first, second, third = (launching.launch(carol, recipe, [lab_host], {})[0] for _ in "abc")
    # The first is still queued (on its way to a worker): the two after it wait behind it.
    assert execute_run(second.pk) == execute_run(third.pk) == WAITING
    third.refresh_from_db()
    assert third.status_note.endswith("2 ahead in line")

    assert launching.cancel(carol, second, second_factor=True) == "cancelled"
    third.refresh_from_db()
    assert third.status_note.endswith("1 ahead in line")
    assert execute_run(first.pk) == "done"
    third.refresh_from_db()
    assert third.state == RunState.QUEUED
    assert execute_run(third.pk) == "done"


@pytest.fixture
def dora(zone):
    """A second zone admin of the lab zone."""
    user = get_user_model().objects.create_user("dora")
    Grant.objects.create(user=user, role=Role.ZONE_ADMIN, zone=zone, reason="test")
    return user


@pytest.fixture
def provisioning(zone, make_recipe):
    zone.requires_approval = True
    zone.save()
    return make_recipe("install_things", lambda p: "echo installed", category=Category.PROVISION)


@pytest.mark.django_db
def test_a_provisioning_run_waits_for_a_second_person(lab_host, alice, dora, provisioning):
    [run] = launching.launch(alice, provisioning, [lab_host], {})
    assert run.state == RunState.AWAITING_APPROVAL
    assert execute_run(run.pk).startswith("not queued")  # nothing runs before approval

    with pytest.raises(launching.NotAllowed) as refused:
        launching.approve(alice, run, "looks fine to me")
    assert refused.value.decision.reason == "own_run"  # the policy's two-person rule
    launching.approve(dora, run, "checked the script")

    run.refresh_from_db()
    assert run.state == RunState.QUEUED
    assert (run.approved_by, run.decision_reason) == (dora, "checked the script")
    event = AuditEvent.objects.get(action="run.approved")
    assert event.actor_name == "dora" and event.details["reason"] == "checked the script"
    assert execute_run(run.pk) == "done"
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED


@pytest.mark.django_db
def test_a_rejected_run_never_runs_and_cannot_be_approved_later(
    lab_host, alice, dora, provisioning
):
    [run] = launching.launch(alice, provisioning, [lab_host], {})

    launching.reject(dora, run, "not during the release")

    run.refresh_from_db()
    assert run.state == RunState.REJECTED
    assert AuditEvent.objects.filter(action="run.rejected").count() == 1
    with pytest.raises(launching.LaunchRefused, match="no longer waiting") as refused:
        launching.approve(dora, run, "changed my mind")
    assert refused.value.reason == "not_awaiting"
    assert execute_run(run.pk).startswith("not queued")


@pytest.mark.django_db
def test_an_operator_cannot_approve(lab_host, alice, carol, provisioning):
    [run] = launching.launch(alice, provisioning, [lab_host], {})

    with pytest.raises(PermissionDenied):
        launching.approve(carol, run, "sure")

    run.refresh_from_db()
    assert run.state == RunState.AWAITING_APPROVAL


@pytest.mark.django_db
def test_a_grant_revoked_after_launch_stops_the_queued_run(lab_host, carol, make_recipe, tmp_path):
    marker = tmp_path / "ran"
    recipe = make_recipe("would_run", lambda p: f"touch {marker}")
    [run] = launching.launch(carol, recipe, [lab_host], {})

    Grant.objects.filter(user=carol).update(revoked_at=timezone.now())
    execute_run(run.pk)

    run.refresh_from_db()
    assert run.state == RunState.FAILED
    assert run.error.startswith("no longer allowed")
    assert not marker.exists()
    assert AuditEvent.objects.filter(action="run.refused_by_policy", target_id=str(run.pk)).exists()
