"""Every change through Django's admin (/admin/) is in the audit chain (security finding A2).

Each model registered in the admin is walked through real HTTP: its add and change pages are
fetched, their forms parsed as a browser would submit them, a few fields changed, and the form
posted back; then its delete page is posted. Each change must leave exactly one event with the
changed fields' values before and after, written by the signed-in superuser from their address.
Models whose admin allows no add, change or delete are listed in REFUSES with the reason, and
are proved to refuse. A model registered later and listed nowhere fails the first test.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from hosts.models import Credential, GrowthPhase, Service
from remora_admin.access.models import Grant, Role, Zone
from remora_admin.admin_audit import AuditedAdminMixin
from remora_admin.audit.chain import verify_chain
from remora_admin.audit.models import AuditEvent
from tests.access.conftest import bernie  # noqa: F401 - a fixture
from tests.access.helpers import PASSWORD, give

from .helpers import (
    _attempt,
    _no_secrets,
    one_event,
    post_form,
    url,
)


@dataclass
class Case:
    """How to add, make and change one model's objects in the admin, and what to expect."""

    add: Callable[[Any], dict[str, Any]] | None  # form changes for an addition
    add_expect: dict[str, Any]  # in the event's `after`
    make: Callable[[Any], Any]  # an existing object to change and delete
    change: dict[str, Any] = field(default_factory=dict)
    change_expect: tuple[str, Any, Any] | None = None  # (field, before, after)
    delete_expect: dict[str, Any] = field(default_factory=dict)  # in the event's `before`
    zone: str = ""
    secrets: Callable[[Any], list[str]] = lambda obj: []  # values no event may contain


def _lockout_case(model, extra: dict, expect: dict, secret: str = "") -> Case:
    return Case(
        add=None,
        add_expect={},
        make=lambda w: _attempt(model, **extra),
        delete_expect={"username": "mallory", **expect},
        secrets=lambda obj: [secret] if secret else [],
    )


CASES: dict[str, Case] = {
    "auth.user": Case(
        add=lambda w: {"username": "newbie", "password1": PASSWORD, "password2": PASSWORD},
        add_expect={"username": "newbie", "password": "[redacted]", "is_superuser": False},
        make=lambda w: w.zoe,
        change={"first_name": "Zoë"},
        change_expect=("first_name", "Zoe", "Zoë"),
        delete_expect={"username": "zoe", "password": "[redacted]"},
        secrets=lambda user: [user.password.split("$")[-1]],
    ),
    "auth.group": Case(
        add=lambda w: {"name": "operators"},
        add_expect={"name": "operators", "permissions": []},
        make=lambda w: Group.objects.create(name="night-shift"),
        change={"name": "night-crew"},
        change_expect=("name", "night-shift", "night-crew"),
        delete_expect={"name": "night-shift"},
    ),
    "otp_totp.totpdevice": Case(
        add=lambda w: {"user": w.zoe.pk, "name": "phone"},
        add_expect={"name": "phone", "key": "[redacted]", "confirmed": True},
        make=lambda w: TOTPDevice.objects.create(user=w.zoe, name="phone", confirmed=True),
        change={"name": "work phone"},
        change_expect=("name", "phone", "work phone"),
        delete_expect={"name": "phone", "key": "[redacted]"},
        secrets=lambda device: [device.key],
    ),
    "otp_static.staticdevice": Case(
        add=lambda w: {
            "user": w.zoe.pk,
            "name": "paper codes",
            "token_set-TOTAL_FORMS": 1,
            "token_set-0-token": "k7q2m9x4",
        },
        add_expect={"name": "paper codes", "token_set": "[redacted]"},
        make=lambda w: StaticDevice.objects.create(user=w.zoe, name="codes", confirmed=True),
        change={"name": "recovery codes"},
        change_expect=("name", "codes", "recovery codes"),
        delete_expect={"name": "codes"},
        secrets=lambda device: ["k7q2m9x4"],
    ),
    "axes.accessattempt": _lockout_case(
        AccessAttempt,
        {"post_data": "username=mallory&otp_token=s3cr3t99", "failures_since_start": 5},
        {"post_data": "[redacted]"},
        secret="s3cr3t99",
    ),
    "axes.accesslog": _lockout_case(
        AccessLog, {"session_hash": "f00dfeed"}, {"session_hash": "[redacted]"}, "f00dfeed"
    ),
    "axes.accessfailurelog": _lockout_case(
        AccessFailureLog, {"locked_out": True}, {"locked_out": True}
    ),
    "access.zone": Case(
        add=lambda w: {"name": "lab", "sensitivity": "restricted"},
        add_expect={"name": "lab", "sensitivity": "restricted"},
        make=lambda w: Zone.objects.create(name="spare-zone"),
        change={"description": "Machines on the shelf."},
        change_expect=("description", "", "Machines on the shelf."),
        delete_expect={"name": "spare-zone"},
    ),
    "hosts.host": Case(
        add=lambda w: {"name": "newhost", "address": "10.0.0.5", "zone": w.sunjammer.pk},
        add_expect={"name": "newhost", "address": "10.0.0.5", "ssh_port": 22},
        make=lambda w: w.spare,
        change={"ssh_port": 2222},
        change_expect=("ssh_port", 22, 2222),
        delete_expect={"name": "spare", "address": "10.0.0.6"},
        zone="sunjammer",
    ),
    "hosts.service": Case(
        add=lambda w: {"kind": "perlbal", "host": w.spare.pk},
        add_expect={"kind": "perlbal", "state": "unknown"},
        make=lambda w: Service.objects.create(kind="heartbeat", host=w.spare),
        change={"state": "stopped"},
        change_expect=("state", "unknown", "stopped"),
        delete_expect={"kind": "heartbeat"},
        zone="sunjammer",
    ),
    "hosts.growthphase": Case(
        add=lambda w: {"number": 9, "name": "Ninth"},
        add_expect={"number": 9, "name": "Ninth", "placements": []},
        make=lambda w: GrowthPhase.objects.create(number=8, name="Eighth"),
        change={"name": "The eighth"},
        change_expect=("name", "Eighth", "The eighth"),
        delete_expect={"number": 8, "name": "Eighth"},
    ),
}

# Models whose admin refuses some of add / change / delete, with the reason.
REFUSES: dict[str, tuple[set[str], str]] = {
    "access.grant": (
        {"add", "change", "delete"},
        "grants change only through the console, which checks the policy and audits them",
    ),
    "django_rq.dashboard": (
        {"add", "change", "delete"},
        "a link to RQ's dashboard with no table behind it: nothing to add, change or delete",
    ),
    "axes.accessattempt": (
        {"add", "change"},
        "lockout records are written by sign-ins and every field is read-only; deleting lifts "
        "a lockout and is audited",
    ),
    "axes.accesslog": ({"add", "change"}, "sign-in records are written by sign-ins only"),
    "axes.accessfailurelog": ({"add", "change"}, "failure records are written by sign-ins only"),
}

REGISTERED = sorted(model._meta.label_lower for model in admin.site._registry)
MODELS = {model._meta.label_lower: model for model in admin.site._registry}


def _expect_values(details: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert details[key] == value, f"{key}: {details.get(key)!r} != {value!r}"


def _zone(obj, case: Case) -> str:
    return obj.name if isinstance(obj, Zone) else case.zone


# --- Every registered model is covered ---------------------------------------------------------


def test_every_registered_model_is_audited_or_listed_as_refusing(admin_client):
    unknown = sorted(set(REGISTERED) - set(CASES) - set(REFUSES))
    assert unknown == [], f"add {unknown} to CASES (with auditing) or REFUSES (with the reason)"
    assert {"auth.user", "auth.group", "hosts.host", "access.grant"} <= set(REGISTERED)
    for label in REGISTERED:
        model_admin = admin.site._registry[MODELS[label]]
        refused, _reason = REFUSES.get(label, (set(), ""))
        if refused != {"add", "change", "delete"}:
            assert isinstance(model_admin, AuditedAdminMixin), f"{label}'s admin is not audited"
    # A credential's private key is never shown: credentials have no admin at all.
    assert not admin.site.is_registered(Credential)


@pytest.mark.parametrize("label", REGISTERED)
def test_the_admin_allows_exactly_what_the_tables_say(label, bernie):  # noqa: F811
    request = RequestFactory().get("/admin/")
    request.user = bernie
    model_admin = admin.site._registry[MODELS[label]]
    allowed = {
        "add": model_admin.has_add_permission(request),
        "change": model_admin.has_change_permission(request),
        "delete": model_admin.has_delete_permission(request),
    }
    refused, _reason = REFUSES.get(label, (set(), ""))
    assert {op for op, ok in allowed.items() if not ok} == refused


# --- Add, change, delete: one event each -------------------------------------------------------


ADDABLE = [label for label in REGISTERED if "add" not in REFUSES.get(label, ({""}, ""))[0]]
CHANGEABLE = [label for label in REGISTERED if "change" not in REFUSES.get(label, ({""}, ""))[0]]
DELETABLE = [label for label in REGISTERED if "delete" not in REFUSES.get(label, ({""}, ""))[0]]


@pytest.mark.parametrize("label", ADDABLE)
def test_adding_through_the_admin_writes_its_event(label, admin_client, world):
    model, case = MODELS[label], CASES[label]
    before_ids = set(model._default_manager.values_list("pk", flat=True))
    form_id = f"{model._meta.model_name}_form"
    response = post_form(admin_client, url(model, "add"), form_id, case.add(world))
    assert response.status_code == 302, response.text[:3000]

    (obj,) = model._default_manager.exclude(pk__in=before_ids)
    event = one_event(obj, f"{model._meta.model_name}.created", world.bernie)
    assert set(event.details) == {"after", "via"}
    _expect_values(event.details["after"], case.add_expect)
    assert event.zone == _zone(obj, case)
    _no_secrets(event, case.secrets(obj))
    if isinstance(obj, StaticDevice):  # its inline token was saved with it
        assert obj.token_set.get().token == "k7q2m9x4"
    assert verify_chain().ok


@pytest.mark.parametrize("label", CHANGEABLE)
def test_changing_through_the_admin_writes_its_event_with_before_and_after(
    label, admin_client, world
):
    model, case = MODELS[label], CASES[label]
    obj = case.make(world)
    form_id = f"{model._meta.model_name}_form"
    response = post_form(admin_client, url(model, "change", obj.pk), form_id, case.change)
    assert response.status_code == 302, response.text[:3000]

    event = one_event(obj, f"{model._meta.model_name}.updated", world.bernie)
    name, before, after = case.change_expect
    # Only what changed is written: the form's round trip of every other field is not a change.
    assert event.details["before"] == {name: before}
    assert event.details["after"] == {name: after}
    assert event.zone == _zone(obj, case)
    _no_secrets(event, case.secrets(obj))


@pytest.mark.parametrize("label", DELETABLE)
def test_deleting_through_the_admin_writes_its_event_with_before(label, admin_client, world):
    model, case = MODELS[label], CASES[label]
    obj = case.make(world)
    secrets = case.secrets(obj)
    response = admin_client.post(url(model, "delete", obj.pk), {"post": "yes"})
    assert response.status_code == 302, response.text[:3000]
    assert not model._default_manager.filter(pk=obj.pk).exists()

    event = one_event(obj, f"{model._meta.model_name}.deleted", world.bernie)
    assert "after" not in event.details
    _expect_values(event.details["before"], case.delete_expect)
    assert event.zone == _zone(obj, case)
    _no_secrets(event, secrets)


# --- What the admin refuses, it refuses --------------------------------------------------------


REFUSED_OPS = [(label, op) for label in sorted(REFUSES) for op in sorted(REFUSES[label][0])]


def _refused_object(label: str, world):
    if label == "access.grant":
        return give(world.zoe, Role.VIEWER, "sunjammer", by=world.bernie)
    if label == "django_rq.dashboard":
        return SimpleNamespace(pk=1)  # no table: any id
    return CASES[label].make(world)


@pytest.mark.parametrize(("label", "op"), REFUSED_OPS)
def test_what_the_admin_refuses_answers_403_and_changes_nothing(label, op, admin_client, world):
    model = MODELS[label]
    obj = _refused_object(label, world)
    count = AuditEvent.objects.count()
    if op == "add":
        assert admin_client.get(url(model, "add")).status_code == 403
        assert admin_client.post(url(model, "add"), {"_save": "Save"}).status_code == 403
    elif op == "change":
        response = admin_client.post(url(model, "change", obj.pk), {"username": "eve"})
        assert response.status_code == 403
    else:
        response = admin_client.post(url(model, "delete", obj.pk), {"post": "yes"})
        assert response.status_code == 403
    if isinstance(obj, Grant | AccessAttempt | AccessLog | AccessFailureLog):
        fresh = model._default_manager.get(pk=obj.pk)  # still there
        assert getattr(fresh, "username", "mallory") == "mallory"  # and unchanged
    assert AuditEvent.objects.count() == count
