"""Applying a growth plan, through the real engine, worker function and SSH (the loopback
sshd): steps run in order, a step already in place on the host is skipped (asked through its
status companion), a failing step stops the batch and resume continues from it, approval holds
a step in a restricted zone, and the phase advances only when every step is done. The plan's
contents are made by the test (recipes that touch files in a temporary directory) so that
nothing here changes this machine; the planner's real steps are tested in test_planner.py and
proven on the lab in tests/recipes/test_growth.py."""

import pytest
from django.contrib.auth import get_user_model

from hosts.changes import make_current
from hosts.models import GrowthPhase, Service
from jobs import batches, planner
from jobs.models import PlanBatch, PlanStep, RunState
from jobs.recipes import Category
from jobs.ssh import quote as q
from jobs.tasks import execute_run
from remora_admin.access.models import Grant, Role
from remora_admin.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

S = PlanStep.Status


@pytest.fixture
def phases(lab_host):
    one = GrowthPhase.objects.create(number=1, name="One")
    two = GrowthPhase.objects.create(number=2, name="Two")
    two.placements.create(host=lab_host, kind="php_frontend", settings={"port": 8081})
    make_current(one)
    return one, two


@pytest.fixture
def marks(make_recipe, tmp_path):
    """`mark_a`, `mark_b`, `mark_c`: touch a file; in place when it exists. `mark_b` fails
    until the file `fixed` exists, and refuses to run without the app password."""
    forms = make_recipe.forms

    def touch(name, needs_fix=False):
        def script(p):
            guard = f"test -e {q(str(tmp_path / 'fixed'))} || {{ echo broken >&2; exit 1; }}\n"
            return (guard if needs_fix else "") + f"touch {q(str(tmp_path / name))}\n"

        return script

    def status(name):
        path = q(str(tmp_path / name))
        return lambda p: (
            f"if test -e {path}; then echo {name} in place; else echo missing; exit 3; fi"
        )

    for name in ("mark_a", "mark_b", "mark_c"):
        make_recipe(
            name,
            touch(name, needs_fix=name == "mark_b"),
            category=Category.PROVISION,
            changes_host=True,
            status=status(name),
            fields={"password": forms.CharField(required=False, widget=forms.PasswordInput)},
            secret_fields=("password",),
        )
    return tmp_path


@pytest.fixture
def the_plan(monkeypatch, lab_host, marks):
    steps = [
        planner.Step("mark_a", lab_host, {}, "first"),
        planner.Step("mark_b", lab_host, {}, "second", inputs={"app_password": "password"}),
        planner.Step("mark_c", lab_host, {}, "third"),
    ]
    monkeypatch.setattr(batches, "steps_between", lambda start, target: steps)
    return steps


def drive(batch: PlanBatch) -> PlanBatch:
    """What the workers do: advance the batch, run each queued step run, until it rests."""
    for _ in range(20):
        batches.advance(batch.pk)
        queued = [s.run for s in batch.steps.select_related("run") if s.run
                  and s.run.state == RunState.QUEUED]  # fmt: skip
        if not queued:
            break
        for run in queued:
            execute_run(run.pk)
    batch.refresh_from_db()
    return batch


def states(batch: PlanBatch) -> list[str]:
    return list(batch.steps.order_by("position").values_list("status", flat=True))


def test_steps_run_in_order_a_step_in_place_is_skipped_and_the_phase_advances(
    alice, phases, the_plan, marks
):
    one, two = phases
    (marks / "fixed").touch()
    (marks / "mark_a").touch()  # already in place on the host
    batch = batches.apply(alice, one, two, {"app_password": "pw-Secret-1"})
    assert batch.secret_inputs  # kept, encrypted, while the batch runs
    assert states(batch) == [S.PENDING] * 3

    drive(batch)

    assert batch.status == PlanBatch.Status.SUCCEEDED, [s.note for s in batch.steps.all()]
    assert states(batch) == [S.IN_PLACE, S.SUCCEEDED, S.SUCCEEDED]
    first, second, third = batch.steps.order_by("position")
    assert first.run is None and "mark_a in place" in first.note
    assert second.run.state == RunState.SUCCEEDED and third.run.state == RunState.SUCCEEDED
    assert second.run.pk < third.run.pk  # in order
    assert "pw-Secret-1" not in second.run.script and second.run.secret_params
    assert (marks / "mark_c").exists()
    assert batch.secret_inputs == b""  # erased once done
    two.refresh_from_db()
    assert two.is_current
    assert Service.objects.get(kind="php_frontend").settings == {"port": 8081}
    actions = list(
        AuditEvent.objects.filter(action__startswith="plan.")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["plan.applied", "plan.step_in_place", "plan.step_launched",
                       "plan.step_succeeded", "plan.step_launched", "plan.step_succeeded",
                       "plan.succeeded"]  # fmt: skip


def test_a_failing_step_stops_the_batch_and_resume_continues_from_it(
    alice, phases, the_plan, marks
):
    one, two = phases
    batch = drive(batches.apply(alice, one, two, {"app_password": "pw-Secret-1"}))

    assert batch.status == PlanBatch.Status.FAILED
    assert states(batch) == [S.SUCCEEDED, S.FAILED, S.PENDING]
    failed = batch.steps.get(position=2)
    assert failed.note.startswith(f"run #{failed.run.pk} failed: exit status 1")
    assert not (marks / "mark_c").exists()  # nothing after the failure ran
    one.refresh_from_db()
    assert one.is_current

    (marks / "fixed").touch()  # someone fixes the cause
    batches.resume(alice, batch)
    assert batch.status == PlanBatch.Status.RUNNING
    drive(batch)

    assert batch.status == PlanBatch.Status.SUCCEEDED
    assert states(batch) == [S.SUCCEEDED, S.SUCCEEDED, S.SUCCEEDED]
    assert batch.steps.get(position=2).run.pk != failed.run.pk  # a new run for the step
    assert batch.steps.get(position=1).run.pk == batch.steps.get(position=1).run.pk
    assert AuditEvent.objects.filter(action="plan.resumed").count() == 1
    with pytest.raises(batches.PlanRefused, match="not stopped at a failed step"):
        batches.resume(alice, batch)


def test_in_a_restricted_zone_each_step_waits_for_a_second_person(
    alice, zone, phases, the_plan, marks
):
    one, two = phases
    zone.requires_approval = True
    zone.save()
    (marks / "fixed").touch()
    bob = get_user_model().objects.create_user("bob", password="bob-pass-1")
    Grant.objects.create(user=bob, role=Role.ZONE_ADMIN, zone=zone, reason="test")
    batch = batches.apply(alice, one, two, {"app_password": "pw-Secret-1"})

    batches.advance(batch.pk)
    step = batch.steps.get(position=1)
    assert step.status == S.LAUNCHED and step.run.state == RunState.AWAITING_APPROVAL
    assert batches.advance(batch.pk) == "waiting"  # nothing moves until someone approves

    from jobs import launch as launching

    for position in (1, 2, 3):
        run = batch.steps.get(position=position).run
        launching.approve(bob, run, "planned growth")
        execute_run(run.pk)
        batches.advance(batch.pk)
    batch.refresh_from_db()
    assert batch.status == PlanBatch.Status.SUCCEEDED
    approvers = {s.run.approved_by for s in batch.steps.all()}
    assert approvers == {bob}


def test_a_rejected_step_stops_the_batch(alice, zone, phases, the_plan):
    one, two = phases
    zone.requires_approval = True
    zone.save()
    bob = get_user_model().objects.create_user("bob", password="bob-pass-1")
    Grant.objects.create(user=bob, role=Role.ZONE_ADMIN, zone=zone, reason="test")
    batch = batches.apply(alice, one, two, {"app_password": "pw-Secret-1"})
    batches.advance(batch.pk)
    from jobs import launch as launching

    run = batch.steps.get(position=1).run
    launching.reject(bob, run, "not this week")
    assert batch.pk in batches.stalled()  # the ticker asks a worker to look
    batches.advance(batch.pk)
    batch.refresh_from_db()
    assert batch.status == PlanBatch.Status.FAILED
    assert "rejected" in batch.steps.get(position=1).note


def test_apply_refuses_in_words_and_changes_nothing(alice, carol, phases, the_plan, lab_host):
    one, two = phases
    with pytest.raises(batches.PlanRefused) as refused:
        batches.apply(alice, one, two, {})
    assert refused.value.problems == ["Application database password: this plan needs it."]

    with pytest.raises(batches.PlanRefused) as refused:
        batches.apply(carol, one, two, {"app_password": "x"})  # an operator may not provision
    assert len(refused.value.problems) == 3
    assert refused.value.problems[0].startswith("Step 1 (Mark a on lab1): ")

    # Someone who may not even see the plan's host is told so, never its name.
    outsider = get_user_model().objects.create_user("zed", password="zed-pass-1")
    with pytest.raises(batches.PlanRefused) as refused:
        batches.apply(outsider, one, two, {"app_password": "x"})
    assert refused.value.problems[0] == (
        "Step 1 runs on a host you may not see: only someone who may act on every host of the "
        "plan applies it."
    )
    assert not any("lab1" in p for p in refused.value.problems)

    with pytest.raises(batches.PlanRefused, match="current phase to the next"):
        batches.apply(alice, two, one, {"app_password": "x"})

    lab_host.credential = None
    lab_host.save()
    with pytest.raises(batches.PlanRefused, match="has no SSH credential"):
        batches.apply(alice, one, two, {"app_password": "x"})

    assert not PlanBatch.objects.exists()
    assert AuditEvent.objects.filter(action="plan.refused").count() == 5


def test_only_one_plan_runs_at_a_time(alice, phases, the_plan):
    one, two = phases
    batches.apply(alice, one, two, {"app_password": "x"})
    with pytest.raises(batches.PlanRefused, match="Another plan is running"):
        batches.apply(alice, one, two, {"app_password": "x"})
