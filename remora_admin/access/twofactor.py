"""TOTP second factor (django-otp): enrolment with a QR code, recovery codes, verification."""

import base64
import io
from typing import Any

import qrcode
import qrcode.image.svg
from django.db import transaction
from django.http import HttpRequest
from django_otp import login as otp_login
from django_otp import match_token, user_has_device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from remora_admin.audit.log import record

RECOVERY_CODES = 10


def pending_device(user: Any, *, create: bool = True) -> TOTPDevice | None:
    """The user's unconfirmed authenticator, made on first use (its secret is new)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None and create:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


def secret_base32(device: TOTPDevice) -> str:
    return base64.b32encode(device.bin_key).decode()


def qr_svg(device: TOTPDevice) -> str:
    """The provisioning URL as an SVG QR code (no script, safe under the CSP)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue().decode()


def new_recovery_codes(user: Any) -> list[str]:
    """Replace the user's recovery codes; the codes are shown once and never again."""
    device, _ = StaticDevice.objects.get_or_create(user=user, name="Recovery codes")
    device.confirmed = True
    device.save()
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    return codes


def confirm_enrolment(request: HttpRequest, token: str) -> list[str] | None:
    """Confirm the pending authenticator with a first code. Returns the recovery codes."""
    user = request.user
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None or not device.verify_token(token.strip()):
        record("auth.2fa_enrol_failed", request=request)
        return None
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=True).delete()
        device.confirmed = True
        device.save()
        codes = new_recovery_codes(user)
        record("auth.2fa_enrolled", request=request, details={"device": device.name})
    if hasattr(user, "_remora_has_2fa"):  # enrolled now: the next question asks again
        del user._remora_has_2fa
    otp_login(request, device)
    return codes


def verify(request: HttpRequest, token: str) -> bool:
    """Check a code (TOTP or a recovery code) and mark this session verified."""
    device = match_token(request.user, token.strip())
    if device is None:
        record("auth.2fa_failed", request=request)
        return False
    otp_login(request, device)
    kind = "recovery code" if isinstance(device, StaticDevice) else "authenticator"
    record("auth.2fa_verified", request=request, details={"method": kind})
    return True


def has_second_factor(user: Any) -> bool:
    """Whether the user enrolled a device; kept on the user object, which lives for one request
    (the enrolment middleware, the banner and the pages all ask)."""
    cached = getattr(user, "_remora_has_2fa", None)
    if cached is None:
        cached = user._remora_has_2fa = user_has_device(user, confirmed=True)
    return cached
