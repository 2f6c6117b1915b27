"""The admin changes security finding A2 names: superuser flag, groups, 2FA devices, lockouts,
host keys, the password form; an invalid or rolled-back change writes nothing."""

import json
from datetime import timedelta

from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from hosts.models import Host
from remora_admin.audit.chain import verify_chain
from remora_admin.audit.models import AuditEvent
from tests.access.conftest import bernie  # noqa: F401 - a fixture

from .helpers import (
    NEW_PASSWORD,
    _attempt,
    _no_secrets,
    events_for,
    one_event,
    post_form,
    read_form,
    url,
)

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
