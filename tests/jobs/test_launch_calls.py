"""Launching, approving and cancelling as plain function calls (the planner, scheduler and API
have no request): the policy decides, refusals come in words, and every refusal is audited with
its target and zone."""

import pytest
from django.contrib.auth import get_user_model
from django_otp.plugins.otp_totp.models import TOTPDevice

from hosts.models import Host
from jobs import launch as launching
from jobs.models import JobRun, RunState
from jobs.recipes import Category
from remora_admin.access.models import Grant, Role, Zone
from remora_admin.audit.models import AuditEvent

from .conftest import request_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def quick(make_recipe):
    return make_recipe("say_hi", lambda p: "echo hi")


@pytest.fixture
def restricted(zone):
    Zone.objects.filter(pk=zone.pk).update(sensitivity=Zone.Sensitivity.RESTRICTED)
    zone.refresh_from_db()
    return zone


def test_an_operator_launches_in_a_standard_zone_with_no_request(lab_host, carol, quick):
    [run] = launching.launch(carol, quick, [lab_host], {})

    assert run.state == RunState.QUEUED and run.requested_by == carol
    event = AuditEvent.objects.get(action="run.requested")
    assert (event.actor_name, event.target_id, event.zone, event.ip) == (
        "carol",
        str(run.pk),
        "lab",
        None,
    )


def test_a_restricted_zone_change_with_no_second_factor_is_refused_in_words(
    lab_host, carol, quick, restricted
):
    lab_host.refresh_from_db()

    with pytest.raises(launching.NotAllowed) as refused:
        launching.launch(carol, quick, [lab_host], {})

    assert refused.value.decision.reason == "needs_2fa"
    assert refused.value.reason == "needs_2fa"
    assert len(str(refused.value)) > 20  # a sentence, not a code
    assert not JobRun.objects.exists()
    event = AuditEvent.objects.get(action="access.denied")
    assert (event.target_type, event.target_id, event.zone) == (
        "hosts.host",
        str(lab_host.pk),
        "lab",
    )
    assert event.details["reason"] == "needs_2fa"
    assert event.details["action"] == "operate"


def test_the_caller_vouches_for_the_second_factor_explicitly(lab_host, carol, quick, restricted):
    lab_host.refresh_from_db()

    [run] = launching.launch(carol, quick, [lab_host], {}, second_factor=True)

    assert run.state == RunState.QUEUED
    assert AuditEvent.objects.get(action="run.requested").details["second_factor"] is True


def test_someone_elses_verified_session_does_not_vouch_for_the_actor(
    lab_host, alice, carol, quick, restricted
):
    """The request's session is read only when it is the actor's own."""
    lab_host.refresh_from_db()
    TOTPDevice.objects.create(user=alice, name="phone", confirmed=True)
    request = request_for(alice)
    request.user.is_verified = lambda: True  # what django-otp sets on a verified session

    with pytest.raises(launching.NotAllowed) as refused:
        launching.launch(carol, quick, [lab_host], {}, request=request)
    assert refused.value.decision.reason == "needs_2fa"

    [run] = launching.launch(alice, quick, [lab_host], {}, request=request)
    assert run.requested_by == alice


def test_a_refused_launch_is_audited_with_the_host_its_zone_and_the_reason(lab_host, carol, quick):
    Host.objects.filter(pk=lab_host.pk).update(credential=None)
    lab_host.refresh_from_db()

    with pytest.raises(launching.LaunchRefused) as refused:
        launching.launch(carol, quick, [lab_host], {})

    assert refused.value.reason == "no_credential"
    assert "has no SSH credential" in str(refused.value)
    assert not JobRun.objects.exists()
    event = AuditEvent.objects.get(action="run.refused")
    assert event.target_type == "hosts.host" and event.target_id == str(lab_host.pk)
    assert event.zone == "lab" and event.actor_name == "carol"
    assert event.details["reason"] == "no_credential"
    assert event.details["recipe"] == "say_hi"


def test_a_launch_on_several_hosts_is_all_or_nothing_and_names_each_refusal(
    sshd_host, lab_host, zone, credential, carol, quick
):
    from .conftest import host_for

    idle = host_for(sshd_host, zone, credential, name="lab-idle")
    Host.objects.filter(pk=idle.pk).update(active=False, host_key="")
    idle.refresh_from_db()

    with pytest.raises(launching.LaunchRefused) as refused:
        launching.launch(carol, quick, [lab_host, idle], {})

    assert {(r.target.name, r.code) for r in refused.value.refusals} == {
        ("lab-idle", "host_inactive"),
        ("lab-idle", "untrusted_key"),
    }
    assert not JobRun.objects.exists()
    assert AuditEvent.objects.filter(action="run.refused", target_id=str(idle.pk)).count() == 2


# --- Approving and cancelling: the policy holds the two-person and own/any rules --------------


@pytest.fixture
def dora(zone):
    user = get_user_model().objects.create_user("dora")
    Grant.objects.create(user=user, role=Role.ZONE_ADMIN, zone=zone, reason="test")
    return user


@pytest.fixture
def waiting_run(lab_host, alice, zone, make_recipe):
    zone.requires_approval = True
    zone.save()
    recipe = make_recipe("install_it", lambda p: "true", category=Category.PROVISION)
    return launching.launch(alice, recipe, [lab_host], {})[0]


def test_the_requester_cannot_approve_their_own_run_the_policy_says_why(waiting_run, alice):
    with pytest.raises(launching.NotAllowed) as refused:
        launching.approve(alice, waiting_run, "fine by me")

    assert refused.value.decision.reason == "own_run"
    waiting_run.refresh_from_db()
    assert waiting_run.state == RunState.AWAITING_APPROVAL
    event = AuditEvent.objects.get(action="access.denied")
    assert event.target_type == "jobs.jobrun" and event.target_id == str(waiting_run.pk)
    assert (event.zone, event.details["reason"], event.details["attempt"]) == (
        "lab",
        "own_run",
        "approve",
    )


def test_a_second_person_approves_with_no_request(waiting_run, dora):
    launching.approve(dora, waiting_run, "read it")

    waiting_run.refresh_from_db()
    assert (waiting_run.state, waiting_run.approved_by) == (RunState.QUEUED, dora)
    event = AuditEvent.objects.get(action="run.approved")
    assert event.details["from"] == "awaiting_approval" and event.details["to"] == "queued"


def test_a_decision_on_a_run_no_longer_waiting_is_refused_and_recorded(waiting_run, dora):
    launching.reject(dora, waiting_run, "not now")

    with pytest.raises(launching.LaunchRefused) as refused:
        launching.approve(dora, JobRun.objects.get(pk=waiting_run.pk), "after all")

    assert refused.value.reason == "not_awaiting"
    assert JobRun.objects.get(pk=waiting_run.pk).state == RunState.REJECTED
    event = AuditEvent.objects.get(action="run.refused")
    assert event.target_id == str(waiting_run.pk) and event.details["state"] == "rejected"


def test_an_operator_cancels_their_own_run_but_not_someone_elses(lab_host, carol, alice, quick):
    mine = launching.launch(carol, quick, [lab_host], {})[0]
    theirs = launching.launch(alice, quick, [lab_host], {})[0]

    assert launching.cancel(carol, mine) == "cancelled"
    with pytest.raises(launching.NotAllowed) as refused:
        launching.cancel(carol, theirs)

    assert refused.value.decision.reason == "no_role"
    assert JobRun.objects.get(pk=theirs.pk).state == RunState.QUEUED
    cancelled = AuditEvent.objects.get(action="run.cancelled")
    assert cancelled.target_id == str(mine.pk) and cancelled.actor_name == "carol"
    denied = AuditEvent.objects.get(action="access.denied")
    assert denied.target_id == str(theirs.pk) and denied.details["action"] == "cancel_run"


def test_a_zone_admin_cancels_anyones_run(lab_host, carol, alice, quick):
    run = launching.launch(carol, quick, [lab_host], {})[0]

    assert launching.cancel(alice, run) == "cancelled"

    run.refresh_from_db()
    assert (run.state, run.cancel_requested_by) == (RunState.CANCELLED, alice)


# --- The run page shows the buttons the policy allows ---------------------------------------


def _page(user, run) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.get(run.get_absolute_url()).content.decode()


def test_the_cancel_button_follows_the_policy(lab_host, carol, alice, quick):
    other = get_user_model().objects.create_user("erin")
    Grant.objects.create(user=other, role=Role.OPERATOR, zone=lab_host.zone, reason="test")
    run = launching.launch(carol, quick, [lab_host], {})[0]

    assert "/cancel/" in _page(carol, run)  # their own run
    assert "/cancel/" in _page(alice, run)  # a zone admin: anyone's
    assert "/cancel/" not in _page(other, run)  # another operator's run


def test_the_approve_buttons_show_to_a_second_person_only(waiting_run, alice, dora):
    assert "/approve/" not in _page(alice, waiting_run)  # the requester
    assert "/approve/" in _page(dora, waiting_run)
