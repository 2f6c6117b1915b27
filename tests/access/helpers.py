"""Helpers for the access tests: making people and grants, signing in, reading the log."""

import time

from django.contrib.auth import get_user_model
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from remora_admin.access.models import Grant, Zone
from remora_admin.access.sudo import SUDO_UNTIL
from remora_admin.audit.models import AuditEvent

PASSWORD = "a-long-test-password-for-everyone"
User = get_user_model()


# --- Helpers ----------------------------------------------------------------------------------


def make_user(username: str, **extra) -> User:
    return User.objects.create_user(
        username, f"{username}@example.org", PASSWORD, first_name=username.capitalize(), **extra
    )


def give(holder, role: str, zone: str | None = None, *, expires_at=None, by=None) -> Grant:
    """Grant `role` (in zone `zone`, by name) to a user or a group, straight into the table."""
    is_group = not isinstance(holder, User)
    return Grant.objects.create(
        user=None if is_group else holder,
        group=holder if is_group else None,
        role=role,
        zone=Zone.objects.get(name=zone) if zone else None,
        reason=f"test: {role} in {zone or 'all zones'}",
        expires_at=expires_at,
        granted_by=by,
    )


def authenticator(user) -> TOTPDevice:
    """A confirmed TOTP device for `user`, as if they had enrolled."""
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)


def current_code(device: TOTPDevice) -> str:
    """The code the user's phone shows right now."""
    device.refresh_from_db()
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    return f"{code:0{device.digits}d}"


def sign_in(user, *, verified: bool = False, sudo: bool = False, client: Client | None = None):
    """A test client signed in as `user`; optionally OTP-verified and in sudo mode.

    Views answer 500 instead of raising, so a crash shows up as a status code like any other.
    """
    client = client or Client(raise_request_exception=False)
    client.force_login(user)
    session = client.session
    if verified:
        device = TOTPDevice.objects.get(user=user, confirmed=True)
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    if sudo:
        session[SUDO_UNTIL] = time.time() + 600
    session.save()
    return client


def events(action: str, **lookup):
    """The audit events of one kind, oldest first."""
    return list(AuditEvent.objects.filter(action=action, **lookup).order_by("sequence"))


def sign_in_verified_in_browser(page, url: str, user) -> None:
    """A real browser signs `user` in with the password, then the authenticator's code."""
    page.goto(f"{url}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/access/two-factor/verify/**")
    page.fill("#id_token", current_code(TOTPDevice.objects.get(user=user)))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{url}/")
