"""The second factor: acting in the restricted zone beamrider needs an OTP-verified session.

Codes are real TOTP codes computed from the device's key, as the user's phone computes them.
"""

import base64
import re

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from hosts.models import Credential
from remora_admin.access.policy import Action, can, decide

from .helpers import PASSWORD, current_code, events, sign_in

VERIFY = reverse("access:two_factor_verify")
TWO_FACTOR = reverse("access:two_factor")
RECOVERY_CODES = reverse("access:recovery_codes")
VERIFY_BANNER = "This session is not verified with your second factor"


def _device(user) -> TOTPDevice:
    return TOTPDevice.objects.get(user=user, confirmed=True)


def _wrong_code(device: TOTPDevice) -> str:
    right = current_code(device)
    return f"{(int(right) + 1) % 1_000_000:06d}"


def _sign_in_with_password(username: str) -> tuple[Client, object]:
    client = Client()
    response = client.post(reverse("login"), {"username": username, "password": PASSWORD})
    return client, response


def _verified(client: Client) -> bool:
    return client.get(reverse("dashboard")).wsgi_request.user.is_verified()


# --- Without a verified session ---------------------------------------------------------------


def test_bob_without_a_verified_session_may_look_at_beamrider_but_not_operate_it(
    bob, beamrider_host
):
    operate = decide(bob, Action.OPERATE, beamrider_host)

    assert not operate.allowed
    assert operate.reason == "needs_2fa"
    assert "second factor" in operate.message
    assert can(bob, Action.VIEW, beamrider_host)


def test_bobs_dashboard_asks_him_to_verify_his_session(bob):
    html = sign_in(bob).get(reverse("dashboard")).text

    assert VERIFY_BANNER in html
    assert f'href="{VERIFY}?next=/"' in html


def test_an_operator_on_sunjammer_only_sees_no_two_factor_banner(carol):
    html = sign_in(carol).get(reverse("dashboard")).text

    assert VERIFY_BANNER not in html
    assert "Set up two-factor authentication" not in html


def test_verifying_a_real_code_makes_the_session_verified_and_lets_bob_operate(bob, beamrider_host):
    client = sign_in(bob)

    response = client.post(VERIFY, {"token": current_code(_device(bob)), "next": "/hosts/"})

    assert response.status_code == 302
    assert response.headers["Location"] == "/hosts/"
    after = client.get(reverse("dashboard"))
    user = after.wsgi_request.user
    assert user.is_verified()
    assert can(user, Action.OPERATE, beamrider_host)
    assert VERIFY_BANNER not in after.text
    [verified] = events("auth.2fa_verified", actor=bob)
    assert verified.details == {"method": "authenticator"}


def test_a_wrong_code_is_refused_and_audited(bob, beamrider_host):
    client = sign_in(bob)

    response = client.post(VERIFY, {"token": _wrong_code(_device(bob))})

    assert response.status_code == 200
    assert "That code is not right, or was already used." in response.text
    assert not _verified(client)
    assert len(events("auth.2fa_failed", actor=bob)) == 1
    assert events("auth.2fa_verified") == []


def test_a_code_cannot_be_used_twice(bob):
    code = current_code(_device(bob))
    first = sign_in(bob)
    second = sign_in(bob)

    first.post(VERIFY, {"token": code})
    response = second.post(VERIFY, {"token": code})

    assert _verified(first)
    assert response.status_code == 200
    assert not _verified(second)


def test_signing_in_with_a_device_leads_to_the_verify_page(bob):
    _, response = _sign_in_with_password("bob")

    assert response.status_code == 302
    assert response.headers["Location"] == f"{VERIFY}?next=%2F"


def test_signing_in_without_a_device_leads_to_the_dashboard(carol):
    _, response = _sign_in_with_password("carol")

    assert response.status_code == 302
    assert response.headers["Location"] == reverse("dashboard")


# --- Enrolment --------------------------------------------------------------------------------


def test_looking_at_the_two_factor_page_creates_no_device(carol):
    client = sign_in(carol)

    html = client.get(TWO_FACTOR).text

    assert not TOTPDevice.objects.filter(user=carol).exists(), "a GET made a device"
    assert '<div class="qr">' not in html
    assert 'name="start"' in html
    assert events("auth.2fa_secret_shown") == []


def test_the_two_factor_page_shows_a_qr_code_and_the_secret_in_base32(carol):
    html = sign_in(carol).post(TWO_FACTOR, {"start": "1"}).text

    pending = TOTPDevice.objects.get(user=carol, confirmed=False)
    qr = re.search(r'<div class="qr">(.*?)</div>', html, re.S).group(1)
    assert "<svg" in qr and "<path" in qr
    assert "<script" not in qr
    secret = re.search(r'<code class="secret">([A-Z2-7=]+)</code>', html).group(1)
    assert base64.b32decode(secret) == pending.bin_key


def test_a_correct_code_confirms_the_device_and_shows_ten_recovery_codes(carol):
    client = sign_in(carol)
    client.post(TWO_FACTOR, {"start": "1"})
    pending = TOTPDevice.objects.get(user=carol, confirmed=False)

    response = client.post(TWO_FACTOR, {"token": current_code(pending)})

    pending.refresh_from_db()
    assert pending.confirmed
    codes = re.findall(r"<li><code>([^<]+)</code></li>", response.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = set(StaticToken.objects.filter(device__user=carol).values_list("token", flat=True))
    assert stored == set(codes)
    [enrolled] = events("auth.2fa_enrolled", actor=carol)
    assert enrolled.details == {"device": "Authenticator app"}
    assert _verified(client)


def test_a_wrong_enrolment_code_confirms_nothing(carol):
    client = sign_in(carol)
    client.post(TWO_FACTOR, {"start": "1"})
    pending = TOTPDevice.objects.get(user=carol, confirmed=False)

    response = client.post(TWO_FACTOR, {"token": _wrong_code(pending)})

    pending.refresh_from_db()
    assert not pending.confirmed
    assert "That code is not right" in response.text
    assert not StaticDevice.objects.filter(user=carol).exists()
    assert len(events("auth.2fa_enrol_failed", actor=carol)) == 1


def test_a_recovery_code_works_once(carol):
    client = sign_in(carol)
    client.post(TWO_FACTOR, {"start": "1"})
    pending = TOTPDevice.objects.get(user=carol, confirmed=False)
    codes = re.findall(
        r"<li><code>([^<]+)</code></li>",
        client.post(TWO_FACTOR, {"token": current_code(pending)}).text,
    )

    first, second = sign_in(carol), sign_in(carol)
    first.post(VERIFY, {"token": codes[0]})
    again = second.post(VERIFY, {"token": codes[0]})

    assert _verified(first)
    assert not _verified(second)
    assert "was already used" in again.text
    assert StaticToken.objects.filter(device__user=carol).count() == 9
    assert events("auth.2fa_verified", actor=carol)[-1].details == {"method": "recovery code"}


# --- Changing the second factor needs the second factor ---------------------------------------


def test_an_unverified_session_cannot_replace_bobs_authenticator(bob):
    """Someone with only bob's password must not swap in their own phone."""
    client = sign_in(bob)
    original = _device(bob)

    page = client.get(TWO_FACTOR, {"replace": "1"})
    started = client.post(TWO_FACTOR, {"start": "1", "replace": "1"})
    pending = TOTPDevice.objects.filter(user=bob, confirmed=False).first()
    if pending is not None:
        client.post(TWO_FACTOR, {"token": current_code(pending)})

    assert not _verified(client), "bob's password alone verified a session with a new phone"
    assert TOTPDevice.objects.filter(pk=original.pk, confirmed=True).exists()
    assert events("auth.2fa_enrolled", actor=bob) == []
    assert '<div class="qr">' not in page.text
    assert '<div class="qr">' not in started.text
    assert pending is None, "an unverified session made a new authenticator secret"


def test_an_unverified_session_cannot_make_new_recovery_codes(bob):
    """Someone with only bob's password must not mint recovery codes and verify with one."""
    client = sign_in(bob, sudo=True)

    response = client.post(RECOVERY_CODES)

    assert response.status_code == 302
    assert response.headers["Location"].startswith(VERIFY)
    assert not StaticToken.objects.filter(device__user=bob).exists()
    assert events("auth.2fa_recovery_codes_replaced") == []


def test_a_verified_session_can_make_new_recovery_codes_in_sudo_mode(bob):
    client = sign_in(bob, verified=True, sudo=True)

    response = client.post(RECOVERY_CODES)

    assert response.status_code == 200
    codes = re.findall(r"<li><code>([^<]+)</code></li>", response.text)
    assert len(codes) == 10
    assert len(events("auth.2fa_recovery_codes_replaced", actor=bob)) == 1


@pytest.mark.parametrize("who", ["bernie", "alice"])
def test_an_unverified_session_cannot_add_an_ssh_credential_to_beamrider(who, request):
    """Adding a credential is acting in the zone; in beamrider that needs the second factor."""
    user = request.getfixturevalue(who)
    client = sign_in(user, sudo=True)

    client.post(reverse("hosts:credential_new"), {"name": "deploy", "zone": "beamrider"})

    assert not Credential.objects.filter(zone__name="beamrider").exists()
    assert events("credential.created") == []
