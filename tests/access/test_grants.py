"""Granting, changing and revoking access through the console, and what each does at once.

Every refusal says why in words, changes nothing, and leaves a `grant.refused` event; every
change leaves its event with what it was before and after.
"""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from remora_admin.access.grants import AccessChangeRefused, create_grant
from remora_admin.access.models import Grant, Role, Zone
from remora_admin.access.policy import Action, can

from .helpers import PASSWORD, events, give, make_user, sign_in

GRANT_NEW = reverse("access:grant_new")
SUNJAMMER_HOST = reverse("hosts:detail", args=["sunjammer"])


def _form_time(when) -> str:
    """A time as the datetime-local input sends it (UTC, to the minute)."""
    return when.strftime("%Y-%m-%dT%H:%M")


def _grant_form(**fields) -> dict:
    data = {"user": "dan", "role": "operator", "zone": "sunjammer", "reason": "covers holidays"}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def _refused(client, **fields):
    """POST the grant form; assert it was refused with nothing changed; return the response."""
    before = list(Grant.objects.values_list("pk", "revoked_at", "expires_at"))
    response = client.post(GRANT_NEW, _grant_form(**fields))
    assert response.status_code == 200, "a refused grant shows the form again"
    assert list(Grant.objects.values_list("pk", "revoked_at", "expires_at")) == before
    assert events("grant.created") == []
    return response


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def erin_in_sudo(erin):
    return sign_in(erin, sudo=True)


@pytest.fixture
def bernie_in_sudo(bernie):
    return sign_in(bernie, verified=True, sudo=True)


# --- Bad input is refused with a clear message, changes nothing, and is audited ------------


def test_erin_asking_for_beamrider_in_the_form_is_told_only_a_superadmin_may(
    erin_in_sudo, dan, erin
):
    response = _refused(erin_in_sudo, zone="beamrider")

    message = "Only a superadmin grants access in the restricted zone beamrider."
    assert message in response.context["form"].non_field_errors()
    assert message in response.text
    [refusal] = events("grant.refused", actor=erin)
    assert refusal.details["reason"] == message
    assert refusal.details["zone"] == "beamrider"


def test_creating_a_grant_in_beamrider_tells_erin_only_a_superadmin_may(erin, dan):
    request = RequestFactory().post(GRANT_NEW)
    request.user = erin
    beamrider = Zone.objects.get(name="beamrider")

    with pytest.raises(AccessChangeRefused) as refusal:
        create_grant(request, user=dan, role=Role.OPERATOR, zone=beamrider, reason="help out")

    message = "Only a superadmin grants access in the restricted zone beamrider."
    assert str(refusal.value) == message
    assert not Grant.objects.filter(user=dan, zone=beamrider).exists()
    [event] = events("grant.refused", actor=erin)
    assert event.details["reason"] == message
    assert event.details["zone"] == "beamrider"
    assert event.details["holder"] == "dan"


def test_erin_cannot_make_anyone_a_zone_admin_of_sunjammer(erin_in_sudo, dan, erin):
    response = _refused(erin_in_sudo, role="zone_admin")

    message = "A zone admin grants only the viewer and operator roles."
    assert response.context["form"].non_field_errors() == [message]
    assert message in response.text
    [refusal] = events("grant.refused", actor=erin)
    assert refusal.details["reason"] == message
    assert refusal.details["role"] == "zone_admin"


def test_a_grant_that_expires_in_the_past_is_refused(erin_in_sudo, dan, erin):
    yesterday = timezone.now() - timedelta(days=1)

    response = _refused(erin_in_sudo, expires_at=_form_time(yesterday))

    message = "The expiry is in the past; choose a time in the future or none."
    assert response.context["form"].non_field_errors() == [message]
    [refusal] = events("grant.refused", actor=erin)
    assert refusal.details["reason"] == message


def test_granting_a_role_someone_already_holds_is_refused(erin_in_sudo, carol, erin):
    response = _refused(erin_in_sudo, user="carol")

    message = "carol already holds operator there."
    assert response.context["form"].non_field_errors() == [message]
    assert Grant.objects.active().filter(user=carol, role=Role.OPERATOR).count() == 1
    [refusal] = events("grant.refused", actor=erin)
    assert refusal.details["reason"] == message


def test_granting_to_an_unknown_user_is_a_form_error(erin_in_sudo, erin):
    response = _refused(erin_in_sudo, user="nobody-by-that-name")

    assert "Select a valid choice" in response.context["form"].errors["user"][0]
    [refusal] = events("grant.refused", actor=erin)
    assert refusal.details["reason"] == "invalid form"
    assert "user" in refusal.details["errors"]


def test_a_grant_without_a_reason_is_refused(erin_in_sudo, dan, erin):
    response = _refused(erin_in_sudo, reason="   ")

    assert response.context["form"].errors["reason"] == ["This field is required."]
    [refusal] = events("grant.refused", actor=erin)
    assert "reason" in refusal.details["errors"]


def test_without_sudo_mode_the_grant_form_asks_for_the_password_first(erin, dan):
    client = sign_in(erin)

    response = client.post(GRANT_NEW, _grant_form())

    assert response.status_code == 302
    assert response.headers["Location"].startswith(reverse("access:confirm_password"))
    assert not Grant.objects.filter(user=dan, role=Role.OPERATOR).exists()


def test_confirming_the_password_opens_sudo_mode_and_returns_to_the_form(erin, dan):
    client = sign_in(erin)
    confirm = reverse("access:confirm_password")

    wrong = client.post(confirm, {"password": "not-it", "next": GRANT_NEW})
    right = client.post(confirm, {"password": PASSWORD, "next": GRANT_NEW})

    assert wrong.status_code == 200
    assert "That password is not right." in wrong.text
    assert right.status_code == 302 and right.headers["Location"] == GRANT_NEW
    assert client.get(GRANT_NEW).status_code == 200
    assert [e.action for e in events("auth.reauthentication_failed", actor=erin)] == [
        "auth.reauthentication_failed"
    ]
    assert len(events("auth.reauthenticated", actor=erin)) == 1


# --- A superadmin grants, changes and revokes; each change is audited with before and after -


def test_bernie_grants_dan_operator_on_sunjammer_until_a_date(bernie_in_sudo, bernie, dan):
    expires = (timezone.now() + timedelta(days=7)).replace(second=0, microsecond=0)

    response = bernie_in_sudo.post(
        GRANT_NEW, _grant_form(expires_at=_form_time(expires), reason="covers the holidays")
    )

    assert response.status_code == 302
    assert response.headers["Location"] == reverse("access_report")
    grant = Grant.objects.get(user=dan, role=Role.OPERATOR)
    assert grant.zone.name == "sunjammer"
    assert grant.expires_at == expires
    assert grant.granted_by == bernie
    [created] = events("grant.created")
    assert created.actor == bernie
    assert created.target_id == str(grant.pk)
    assert created.zone == "sunjammer"
    assert created.details == {
        "after": {
            "holder": "dan",
            "role": "operator",
            "zone": "sunjammer",
            "expires_at": expires.isoformat(),
            "reason": "covers the holidays",
        }
    }
    assert can(dan, Action.OPERATE, grant.zone)


def test_revoking_a_grant_records_it_before_and_after(bernie_in_sudo, bernie, carol):
    grant = Grant.objects.get(user=carol)
    url = reverse("access:grant_revoke", args=[grant.pk])

    response = bernie_in_sudo.post(url, {"reason": "left the project"})

    assert response.status_code == 302
    grant.refresh_from_db()
    assert grant.revoked_at is not None
    assert grant.revoked_by == bernie
    assert grant.revoke_reason == "left the project"
    [revoked] = events("grant.revoked")
    assert revoked.actor == bernie
    assert revoked.target_id == str(grant.pk)
    assert revoked.details["before"] == {
        "holder": "carol",
        "role": "operator",
        "zone": "sunjammer",
        "expires_at": None,
        "reason": grant.reason,
    }
    assert revoked.details["after"] == {"revoked": True, "reason": "left the project"}


def test_revoking_without_a_reason_is_refused_and_changes_nothing(bernie_in_sudo, carol):
    grant = Grant.objects.get(user=carol)

    response = bernie_in_sudo.post(reverse("access:grant_revoke", args=[grant.pk]), {})

    grant.refresh_from_db()
    assert grant.revoked_at is None
    assert _messages(response) == ["Give a reason for revoking the grant."]
    assert events("grant.revoked") == []


def test_changing_an_expiry_records_it_before_and_after(bernie_in_sudo, bernie, carol):
    grant = Grant.objects.get(user=carol)
    new_expiry = (timezone.now() + timedelta(days=30)).replace(second=0, microsecond=0)

    response = bernie_in_sudo.post(
        reverse("access:grant_expiry", args=[grant.pk]), {"expires_at": _form_time(new_expiry)}
    )

    assert response.status_code == 302
    grant.refresh_from_db()
    assert grant.expires_at == new_expiry
    [changed] = events("grant.changed")
    assert changed.actor == bernie
    assert changed.details["before"]["expires_at"] is None
    assert changed.details["after"]["expires_at"] == new_expiry.isoformat()
    assert changed.details["after"]["holder"] == "carol"


def test_an_empty_expiry_is_refused_rather_than_making_the_grant_permanent(bernie_in_sudo, dan):
    grant = Grant.objects.get(user=dan)
    before = grant.expires_at

    response = bernie_in_sudo.post(
        reverse("access:grant_expiry", args=[grant.pk]), {"expires_at": ""}
    )

    grant.refresh_from_db()
    assert grant.expires_at == before
    assert _messages(response) == ["Enter the new expiry as a date and time."]
    assert events("grant.changed") == []


def test_a_zone_admin_cannot_change_a_grant_in_a_zone_she_does_not_administer(alice, bob):
    client = sign_in(alice, verified=True, sudo=True)
    grant = Grant.objects.get(user=bob)
    soon = timezone.now() + timedelta(days=3)

    client.post(reverse("access:grant_expiry", args=[grant.pk]), {"expires_at": _form_time(soon)})

    grant.refresh_from_db()
    assert grant.expires_at is None
    [refusal] = events("grant.change.refused", actor=alice)
    assert refusal.details["reason"] == (
        "Only a superadmin grants access in the restricted zone beamrider."
    )


# --- Changes take effect on the very next request --------------------------------------------


def test_an_expired_grant_gives_nothing_from_that_second_on(zed):
    grant = give(zed, Role.VIEWER, "sunjammer", expires_at=timezone.now() + timedelta(seconds=2))
    client = sign_in(zed)
    assert client.get(SUNJAMMER_HOST).status_code == 200
    assert grant.is_active(at=grant.expires_at - timedelta(microseconds=1))
    assert not grant.is_active(at=grant.expires_at)
    assert not Grant.objects.active(at=grant.expires_at).filter(pk=grant.pk).exists()

    Grant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert client.get(SUNJAMMER_HOST).status_code == 404
    assert client.get(reverse("phases")).status_code == 403


def test_a_revoked_grant_loses_access_on_the_next_request(bernie_in_sudo, carol):
    carols = sign_in(carol)
    assert carols.get(SUNJAMMER_HOST).status_code == 200
    grant = Grant.objects.get(user=carol)

    bernie_in_sudo.post(reverse("access:grant_revoke", args=[grant.pk]), {"reason": "done"})

    assert carols.get(SUNJAMMER_HOST).status_code == 404


def test_a_deactivated_person_is_signed_out_on_their_next_request(bernie_in_sudo, carol):
    carols = sign_in(carol)
    assert carols.get(reverse("dashboard")).status_code == 200

    bernie_in_sudo.post(
        reverse("access:person_deactivate", args=[carol.pk]), {"reason": "account compromised"}
    )

    carol.refresh_from_db()
    assert not carol.is_active
    [event] = events("user.deactivated")
    assert event.details["before"] == {"is_active": True}
    assert event.details["after"] == {"is_active": False}
    response = carols.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response.headers["Location"].startswith(reverse("login"))
    assert response.wsgi_request.user.is_anonymous
    assert carols.get(SUNJAMMER_HOST).status_code == 302


def test_a_deactivated_person_cannot_sign_in_again(bernie_in_sudo, carol):
    bernie_in_sudo.post(
        reverse("access:person_deactivate", args=[carol.pk]), {"reason": "left the project"}
    )

    response = Client().post(reverse("login"), {"username": "carol", "password": PASSWORD})

    assert response.status_code == 200
    assert not response.wsgi_request.user.is_authenticated
    assert "correct username and password" in response.text


# --- Groups -----------------------------------------------------------------------------------


def test_a_grant_to_a_group_gives_its_members_the_role(zed, sunjammer_host):
    crew = Group.objects.create(name="sunjammer-crew")
    give(crew, Role.OPERATOR, "sunjammer")
    client = sign_in(zed)
    assert client.get(SUNJAMMER_HOST).status_code == 404

    zed.groups.add(crew)

    response = client.get(SUNJAMMER_HOST)
    assert response.status_code == 200
    assert can(response.wsgi_request.user, Action.OPERATE, sunjammer_host)
    assert not can(response.wsgi_request.user, Action.PROVISION, sunjammer_host)


def test_leaving_the_group_ends_the_role(zed):
    crew = Group.objects.create(name="sunjammer-crew")
    give(crew, Role.VIEWER, "sunjammer")
    zed.groups.add(crew)
    client = sign_in(zed)
    assert client.get(SUNJAMMER_HOST).status_code == 200

    zed.groups.remove(crew)

    assert client.get(SUNJAMMER_HOST).status_code == 404


def test_a_zone_admin_cannot_deactivate_someone_who_holds_beamrider_through_a_group(erin):
    frank = make_user("frank")
    ops = Group.objects.create(name="beamrider-ops")
    give(ops, Role.OPERATOR, "beamrider")
    frank.groups.add(ops)
    client = sign_in(erin, sudo=True)

    response = client.post(
        reverse("access:person_deactivate", args=[frank.pk]), {"reason": "tidying up"}
    )

    frank.refresh_from_db()
    assert frank.is_active, "erin (sunjammer only) ended a beamrider operator's access"
    assert _messages(response) == [
        "frank holds access in beamrider, beyond the zones you administer. Ask a superadmin."
    ]
    assert events("user.deactivated") == []
    assert len(events("user.deactivate.refused", actor=erin)) == 1
