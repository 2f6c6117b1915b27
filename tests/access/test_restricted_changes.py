"""Changing who may act in the restricted zone needs a session verified with the second factor,
and people who hold anything there must enrol one before they can use the console.

A stolen superadmin password (with sudo mode, which is only the password again) must not turn
into control of beamrider: each change below is refused with a 403, changes nothing, and the
attempt is audited; the same change from a verified session goes through.
"""

from datetime import timedelta

import pytest
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from remora_admin.access.models import Grant, Role
from remora_admin.audit.models import AuditEvent

from .helpers import events, give, make_user, sign_in

VERIFY_WORDS = "needs a session verified with your second factor"


def _form_time(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def _zone_admin_in_beamrider(newcomer) -> dict:
    return {
        "user": newcomer.username,
        "role": Role.ZONE_ADMIN,
        "zone": "beamrider",
        "reason": "takes over beamrider",
        "expires_at": "",
    }


# --- Each change, unverified (refused) and verified (done) -----------------------------------


def _create_person(client, cast):
    return client.post(
        reverse("access:person_new"), {"username": "mallory", "email": "m@example.org"}
    )


def _grant_beamrider(client, cast):
    return client.post(reverse("access:grant_new"), _zone_admin_in_beamrider(cast.zed))


def _change_expiry(client, cast):
    grant = Grant.objects.get(user=cast.bob)
    later = _form_time(timezone.now() + timedelta(days=30))
    return client.post(reverse("access:grant_expiry", args=[grant.pk]), {"expires_at": later})


def _revoke(client, cast):
    grant = Grant.objects.get(user=cast.bob)
    return client.post(reverse("access:grant_revoke", args=[grant.pk]), {"reason": "left"})


def _deactivate(client, cast):
    return client.post(
        reverse("access:person_deactivate", args=[cast.bob.pk]), {"reason": "left the team"}
    )


def _state(cast) -> tuple:
    bob_grant = Grant.objects.get(user=cast.bob)
    bob_grant_state = (bob_grant.expires_at, bob_grant.revoked_at)
    cast.bob.refresh_from_db()
    people = sorted(cast.bob._meta.model.objects.values_list("username", "is_active"))
    grants = Grant.objects.count()
    return bob_grant_state, people, grants


CHANGES = {
    "create a person": (_create_person, "user.created"),
    "grant zone admin in beamrider": (_grant_beamrider, "grant.created"),
    "change a beamrider grant's expiry": (_change_expiry, "grant.changed"),
    "revoke a beamrider grant": (_revoke, "grant.revoked"),
    "deactivate a beamrider operator": (_deactivate, "user.deactivated"),
}


@pytest.mark.parametrize("change", CHANGES)
def test_an_unverified_superadmin_session_cannot_change_beamrider_access(change, cast):
    make_change, done_event = CHANGES[change]
    client = sign_in(cast.bernie, sudo=True)  # password and sudo, never the second factor
    before = _state(cast)

    response = make_change(client, cast)

    assert response.status_code == 403, f"{change}: {response.status_code}"
    assert VERIFY_WORDS in response.text
    assert _state(cast) == before, f"{change} changed something"
    assert events(done_event) == []
    refusals = AuditEvent.objects.filter(actor=cast.bernie).filter(
        Q(action="access.denied") | Q(action__endswith=".refused")
    )
    assert [e.details.get("reason") for e in refusals] == ["needs_2fa"], "audited once"


@pytest.mark.parametrize("change", CHANGES)
def test_the_same_change_from_a_verified_session_goes_through(change, cast):
    make_change, done_event = CHANGES[change]
    client = sign_in(cast.bernie, verified=True, sudo=True)

    response = make_change(client, cast)

    assert response.status_code in (200, 302), response.status_code
    assert len(events(done_event, actor=cast.bernie)) == 1


def test_deactivating_a_sunjammer_viewer_needs_no_second_factor_from_the_sunjammer_admin(cast):
    client = sign_in(cast.erin, sudo=True)

    client.post(reverse("access:person_deactivate", args=[cast.dan.pk]), {"reason": "left"})

    cast.dan.refresh_from_db()
    assert not cast.dan.is_active


# --- Forced enrolment -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "zone"),
    [(Role.VIEWER, "beamrider"), (Role.OPERATOR, "beamrider"), (Role.AUDITOR, None)],
)
def test_whoever_holds_a_role_reaching_beamrider_must_enrol_before_any_page(role, zone, topology):
    frank = make_user("frank")
    give(frank, role, zone)
    client = sign_in(frank)

    for page in (reverse("dashboard"), reverse("hosts:list"), reverse("jobs:runs")):
        response = client.get(page)
        assert response.status_code == 302, page
        assert response.headers["Location"].startswith(f"{reverse('access:two_factor')}?")
        assert "required=1" in response.headers["Location"]

    enrolment = client.get(reverse("access:two_factor"), {"required": "1"})
    assert enrolment.status_code == 200
    assert "Set up a second factor now" in enrolment.text
    assert client.post(reverse("logout")).status_code == 302


def test_a_sunjammer_operator_is_not_forced_to_enrol(carol):
    assert sign_in(carol).get(reverse("dashboard")).status_code == 200


def test_enrolling_opens_the_console(topology):
    frank = make_user("frank")
    give(frank, Role.OPERATOR, "beamrider")
    client = sign_in(frank)
    assert client.get(reverse("dashboard")).status_code == 302

    from django_otp.plugins.otp_totp.models import TOTPDevice

    from .helpers import current_code

    client.post(reverse("access:two_factor"), {"start": "1"})
    pending = TOTPDevice.objects.get(user=frank, confirmed=False)
    client.post(reverse("access:two_factor"), {"token": current_code(pending)})

    assert client.get(reverse("dashboard")).status_code == 200


# --- Refusals in words ------------------------------------------------------------------------


def test_a_refusal_says_what_is_needed_where_and_whom_to_ask(cast, beamrider_host):
    from remora_admin.access.policy import Action, decide

    carol_on_beamrider = decide(cast.carol, Action.OPERATE, beamrider_host)
    dan_launching = decide(
        cast.dan, Action.OPERATE, beamrider_host.zone.__class__.objects.get(name="sunjammer")
    )
    zed_audit = decide(cast.zed, Action.READ_AUDIT)

    assert carol_on_beamrider.message == (
        "You need the operator role in beamrider to launch jobs. Ask a superadmin (the lead admin)."
    )
    assert dan_launching.message == (
        "You need the operator role in sunjammer to launch jobs. Ask a zone admin of sunjammer."
    )
    assert zed_audit.message == (
        "You need an auditor role to read the audit log. Ask a superadmin (the lead admin)."
    )
    for decision in (carol_on_beamrider, dan_launching, zed_audit):
        assert "_" not in decision.message, "action names leak into the words"


def test_a_refused_page_is_audited_with_a_target(cast):
    sign_in(cast.carol).get(reverse("audit:list"))

    [denial] = events("access.denied", actor=cast.carol)
    assert (denial.target_type, denial.target_repr) == ("page", reverse("audit:list"))


# --- What people see: only what they may use -------------------------------------------------


def test_the_auditor_sees_no_grant_button_and_no_people_link(cast):
    html = sign_in(cast.ivan).get(reverse("access_report")).text

    assert reverse("access:grant_new") not in html
    assert reverse("access:people") not in html


def test_the_lead_admin_sees_them_once_verified(cast):
    html = sign_in(cast.bernie, verified=True).get(reverse("access_report")).text

    assert reverse("access:grant_new") in html
    assert reverse("access:people") in html


def test_a_zone_admins_people_page_says_it_is_filtered_and_shows_others_by_name_only(cast):
    cast.bob.last_login = timezone.now()
    cast.bob.save()
    html = sign_in(cast.erin).get(reverse("access:people")).text

    assert "Filtered to your zones (sunjammer)" in html
    assert "bob" in html  # by name
    assert "Operator in beamrider" not in html
    detail = sign_in(cast.erin).get(reverse("access:person", args=[cast.bob.pk])).text
    assert cast.bob.email not in detail
    assert "<dt>Two-factor</dt>" not in detail and "<dt>Last sign-in</dt>" not in detail
    own = sign_in(cast.erin).get(reverse("access:person", args=[cast.carol.pk])).text
    assert cast.carol.email in own and "<dt>Two-factor</dt>" in own


def test_the_lead_admins_people_page_is_not_filtered(cast):
    html = sign_in(cast.bernie).get(reverse("access:people")).text

    assert "Filtered to your zones" not in html
    assert "Operator in beamrider" in html


def test_the_refusal_page_offers_to_enter_the_code_and_come_back(cast):
    response = sign_in(cast.bernie, sudo=True).get(reverse("access:person_new"))

    assert response.status_code == 403
    verify = f"{reverse('access:two_factor_verify')}?next=%2Faccess%2Fpeople%2Fnew%2F"
    assert f'href="{verify}"' in response.text
