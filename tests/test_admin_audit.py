"""Every change through Django's admin (/admin/) is in the audit chain (security finding A2).

Each model registered in the admin is walked through real HTTP: its add and change pages are
fetched, their forms parsed as a browser would submit them, a few fields changed, and the form
posted back; then its delete page is posted. Each change must leave exactly one event with the
changed fields' values before and after, written by the signed-in superuser from their address.
Models whose admin allows no add, change or delete are listed in REFUSES with the reason, and
are proved to refuse. A model registered later and listed nowhere fails the first test.
"""

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from types import SimpleNamespace
from typing import Any

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from hosts.models import Credential, GrowthPhase, Host, Service
from remora_admin.access.models import Grant, Role, Zone
from remora_admin.admin_audit import AuditedAdminMixin
from remora_admin.audit.log import verify_chain
from remora_admin.audit.models import AuditEvent
from tests.access.conftest import bernie  # noqa: F401 - a fixture
from tests.access.helpers import PASSWORD, authenticator, give, make_user, sign_in

NEW_PASSWORD = "another-long-password-for-the-admin-test"

# --- Reading an admin form as a browser submits it ---------------------------------------------


class _FormReader(HTMLParser):
    """The values a browser would submit from the form with id `form_id`."""

    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.data: dict[str, list[str]] = defaultdict(list)
        self.names: set[str] = set()  # every named control, submitted or not
        self._select: dict[str, Any] | None = None
        self._option: dict[str, Any] | None = None
        self._textarea: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = True
            return
        if not self.inside:
            return
        name = a.get("name")
        if name and tag in {"input", "select", "textarea"}:
            self.names.add(name)
        if tag == "input" and name and "disabled" not in a:
            kind = (a.get("type") or "text").lower()
            if kind in {"checkbox", "radio"}:
                if "checked" in a:
                    self.data[name].append(a.get("value") or "on")
            elif kind not in {"submit", "button", "image", "file", "reset"}:
                self.data[name].append(a.get("value") or "")
        elif tag == "select" and name and "disabled" not in a:
            self._select = {"name": name, "multiple": "multiple" in a, "options": []}
        elif tag == "option" and self._select is not None:
            self._option = {"value": a.get("value"), "selected": "selected" in a, "text": ""}
        elif tag == "textarea" and name and "disabled" not in a:
            self._textarea = [name, ""]

    def handle_data(self, data):
        if self._option is not None:
            self._option["text"] += data
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "option" and self._option is not None and self._select is not None:
            option = self._option
            value = option["value"] if option["value"] is not None else option["text"].strip()
            self._select["options"].append((value, option["selected"]))
            self._option = None
        elif tag == "select" and self._select is not None:
            options = self._select["options"]
            chosen = [v for v, selected in options if selected]
            if not chosen and not self._select["multiple"] and options:
                chosen = [options[0][0]]
            self.data[self._select["name"]].extend(chosen)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            name, text = self._textarea
            self.data[name].append(text.removeprefix("\r\n").removeprefix("\n"))
            self._textarea = None


def read_form(html: str, form_id: str) -> tuple[dict[str, list[str]], set[str]]:
    reader = _FormReader(form_id)
    reader.feed(html)
    assert reader.names, f"no form #{form_id} on the page"
    return {k: v for k, v in reader.data.items() if v}, reader.names


def post_form(client, url: str, form_id: str, changes: dict[str, Any]):
    """GET `url`, take its form's values, apply `changes`, and POST it back."""
    page = client.get(url)
    assert page.status_code == 200, f"{url} answered {page.status_code}"
    data, _ = read_form(page.text, form_id)
    for name, value in changes.items():
        data[name] = value if isinstance(value, list) else [str(value)]
    data["_save"] = ["Save"]
    return client.post(url, data)


# --- Reading the log ---------------------------------------------------------------------------


def events_for(obj, action: str) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            action=action, target_type=obj._meta.label_lower, target_id=str(obj.pk)
        ).order_by("sequence")
    )


def one_event(obj, action: str, actor) -> AuditEvent:
    found = events_for(obj, action)
    assert len(found) == 1, f"expected one {action} event for {obj!r}, found {len(found)}"
    event = found[0]
    assert event.actor_id == actor.pk and event.actor_name == actor.username
    assert event.ip == "127.0.0.1"
    assert event.details.get("via") == "admin"
    return event


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


# --- The world the walk works in ---------------------------------------------------------------


@pytest.fixture
def admin_client(bernie):  # noqa: F811
    """Bernie, a superuser, in a session verified with his second factor."""
    if not TOTPDevice.objects.filter(user=bernie, confirmed=True).exists():
        authenticator(bernie)
    return sign_in(bernie, verified=True, sudo=True)


@pytest.fixture
def world(bernie):  # noqa: F811
    zoe = make_user("zoe")
    # The admin shows times to the second; a whole second keeps a round trip a no-op.
    zoe.date_joined = zoe.date_joined.replace(microsecond=0)
    zoe.save(update_fields=["date_joined"])
    sunjammer = Zone.objects.get(name="sunjammer")
    spare = Host.objects.create(name="spare", address="10.0.0.6", zone=sunjammer)
    return SimpleNamespace(bernie=bernie, zoe=zoe, sunjammer=sunjammer, spare=spare)


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


def _attempt(model, ip="10.0.0.9", **extra):
    """A lockout record (django-axes) for mallory."""
    where = {"ip_address": ip, "user_agent": "curl", "http_accept": "*/*", "path_info": "/"}
    return model.objects.create(username="mallory", **where, **extra)


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


def _no_secrets(event: AuditEvent, values: list[str]) -> None:
    text = json.dumps(event.details) + event.target_repr
    for value in values:
        assert value and value not in text, "a secret reached the audit log"


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


# --- The cases the finding names ---------------------------------------------------------------


def test_making_a_user_superuser_writes_is_superuser_false_to_true(admin_client, world):
    form_id = "user_form"
    user_url = url(type(world.zoe), "change", world.zoe.pk)
    response = post_form(admin_client, user_url, form_id, {})
    assert response.status_code == 302
    assert events_for(world.zoe, "user.updated") == []  # saving it unchanged is no change

    change = {"is_superuser": "on", "is_staff": "on"}
    response = post_form(admin_client, user_url, form_id, change)
    assert response.status_code == 302
    world.zoe.refresh_from_db()
    assert world.zoe.is_superuser

    event = one_event(world.zoe, "user.updated", world.bernie)
    assert event.details["before"] == {"is_superuser": False, "is_staff": False}
    assert event.details["after"] == {"is_superuser": True, "is_staff": True}


def test_adding_a_user_to_a_group_and_a_group_permission_writes_the_change(admin_client, world):
    group = Group.objects.create(name="operators")
    user_url = url(type(world.zoe), "change", world.zoe.pk)
    response = post_form(admin_client, user_url, "user_form", {"groups": [str(group.pk)]})
    assert response.status_code == 302
    assert list(world.zoe.groups.all()) == [group]
    event = one_event(world.zoe, "user.updated", world.bernie)
    assert event.details["before"] == {"groups": []}
    assert event.details["after"] == {"groups": ["operators"]}

    permission = Permission.objects.get(codename="change_host")
    group_url = url(Group, "change", group.pk)
    response = post_form(admin_client, group_url, "group_form", {"permissions": [permission.pk]})
    assert response.status_code == 302
    event = one_event(group, "group.updated", world.bernie)
    assert event.details["before"] == {"permissions": []}
    assert event.details["after"] == {"permissions": [str(permission)]}


def test_deleting_a_totp_device_writes_an_event_without_its_key(admin_client, world):
    device = TOTPDevice.objects.create(user=world.zoe, name="phone", confirmed=True)
    response = admin_client.post(url(TOTPDevice, "delete", device.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()
    event = one_event(device, "totpdevice.deleted", world.bernie)
    assert event.details["before"]["user_id"] == world.zoe.pk
    assert event.details["before"]["key"] == "[redacted]"
    _no_secrets(event, [device.key])


def test_an_existing_totp_devices_key_is_not_shown_in_the_admin(admin_client, world):
    device = TOTPDevice.objects.create(user=world.zoe, name="phone", confirmed=True)
    page = admin_client.get(url(TOTPDevice, "change", device.pk))
    assert page.status_code == 200
    assert device.key not in page.text
    config = reverse("admin:otp_totp_totpdevice_config", kwargs={"pk": device.pk})
    assert admin_client.get(config).status_code == 403
    assert device.key not in admin_client.get(url(TOTPDevice, "changelist")).text


HOST_KEY_FIELDS = [
    "host_key",
    "host_key_fingerprint",
    "host_key_trusted_by",
    "host_key_trusted_at",
    "seen_host_key",
    "seen_host_key_fingerprint",
    "host_key_alert",
]


def test_the_host_admin_cannot_change_a_hosts_key_or_its_trust(admin_client, world):
    pinned = {"host_key": "ssh-ed25519 AAAAgood", "host_key_fingerprint": "SHA256:good"}
    Host.objects.filter(name="beamrider").update(**pinned)
    host = Host.objects.get(name="beamrider")
    change_url = url(Host, "change", host.pk)

    _, names = read_form(admin_client.get(change_url).text, "host_form")
    assert "description" in names
    for name in HOST_KEY_FIELDS:
        assert not {name, f"{name}_0", f"{name}_1"} & names, f"{name} is editable"

    forged = {
        "host_key": "ssh-ed25519 AAAAevil",
        "host_key_fingerprint": "SHA256:evil",
        "host_key_trusted_by": world.zoe.pk,
        "host_key_trusted_at_0": "2030-01-01",
        "host_key_trusted_at_1": "00:00:00",
        "host_key_alert": "",
        "description": "Edited in the admin.",
    }
    response = post_form(admin_client, change_url, "host_form", forged)
    assert response.status_code == 302
    host.refresh_from_db()
    assert host.description == "Edited in the admin."
    assert (host.host_key, host.host_key_fingerprint) == tuple(pinned.values())
    assert host.host_key_trusted_by is None and host.host_key_trusted_at is None
    event = one_event(host, "host.updated", world.bernie)
    assert set(event.details["after"]) == {"description"}
    assert event.zone == "beamrider"


def test_an_invalid_admin_form_changes_nothing_and_writes_no_event(admin_client, world):
    count = AuditEvent.objects.count()
    change_url = url(type(world.zoe), "change", world.zoe.pk)
    response = post_form(
        admin_client, change_url, "user_form", {"username": "", "is_superuser": "on"}
    )
    assert response.status_code == 200 and "This field is required" in response.text
    world.zoe.refresh_from_db()
    assert world.zoe.username == "zoe" and not world.zoe.is_superuser
    assert AuditEvent.objects.count() == count


def test_a_change_rolled_back_after_its_save_leaves_no_event(admin_client, world, monkeypatch):
    host_url = url(Host, "change", world.spare.pk)
    # The control: the same change, when it commits, writes its event.
    assert post_form(admin_client, host_url, "host_form", {"ssh_port": 2200}).status_code == 302
    assert len(events_for(world.spare, "host.updated")) == 1

    def fail(*args, **kwargs):
        raise RuntimeError("the admin's own log fails after the save")

    monkeypatch.setattr(type(admin.site._registry[Host]), "log_change", fail)
    response = post_form(admin_client, host_url, "host_form", {"ssh_port": 2222})
    assert response.status_code == 500
    world.spare.refresh_from_db()
    assert world.spare.ssh_port == 2200
    assert len(events_for(world.spare, "host.updated")) == 1
    assert verify_chain().ok


def test_the_admin_password_form_writes_an_event_without_the_password(admin_client, world):
    password_url = reverse("admin:auth_user_password_change", args=[world.zoe.pk])
    old_hash = world.zoe.password

    mismatch = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD + "x"}
    response = post_form(admin_client, password_url, "user_form", mismatch)
    assert response.status_code == 200
    assert events_for(world.zoe, "user.updated") == []

    both = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    response = post_form(admin_client, password_url, "user_form", both)
    assert response.status_code == 302
    world.zoe.refresh_from_db()
    assert world.zoe.check_password(NEW_PASSWORD)

    event = one_event(world.zoe, "user.updated", world.bernie)
    assert set(event.details["before"]) == set(event.details["after"]) == {"password"}
    assert event.details["after"]["password"] in {"changed", "[redacted]"}
    for secret in (NEW_PASSWORD, old_hash, world.zoe.password, old_hash.split("$")[-1]):
        assert secret not in json.dumps(event.details)


def test_deleting_lockout_records_in_bulk_writes_one_event_each(admin_client, world):
    first = _attempt(AccessAttempt, get_data="", post_data="", failures_since_start=5)
    second = _attempt(
        AccessAttempt, ip="10.0.0.10", get_data="", post_data="", failures_since_start=2
    )
    response = admin_client.post(
        url(AccessAttempt, "changelist"),
        {"action": "delete_selected", "_selected_action": [first.pk, second.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    for attempt in (first, second):
        event = one_event(attempt, "accessattempt.deleted", world.bernie)
        assert event.details["before"]["failures_since_start"] == attempt.failures_since_start


def test_cleaning_up_expired_lockouts_writes_an_event(admin_client, world):
    attempt = _attempt(AccessAttempt, get_data="", post_data="", failures_since_start=5)
    long_ago = timezone.now() - timedelta(days=2)
    AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=long_ago)
    response = admin_client.post(
        url(AccessAttempt, "changelist"),
        {"action": "cleanup_expired_attempts", "_selected_action": [attempt.pk]},
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    (event,) = AuditEvent.objects.filter(action="accessattempt.expired_cleaned")
    assert event.details == {"deleted": 1, "via": "admin"} and event.actor_id == world.bernie.pk


def test_a_static_devices_tokens_are_redacted_and_not_shown_back(admin_client, world):
    device = StaticDevice.objects.create(user=world.zoe, name="codes", confirmed=True)
    StaticToken.objects.create(device=device, token="s3cr3t99")
    page = admin_client.get(url(StaticDevice, "change", device.pk))
    assert page.status_code == 200 and "s3cr3t99" not in page.text
    admin_client.post(url(StaticDevice, "delete", device.pk), {"post": "yes"})
    event = one_event(device, "staticdevice.deleted", world.bernie)
    assert event.details["before"]["token_set"] == "[redacted]"
    assert event.details["also_deleted"] == [{"model": "otp_static.statictoken", "count": 1}]
    _no_secrets(event, ["s3cr3t99"])
