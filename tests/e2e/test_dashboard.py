"""The console in a real browser: sign in, see the beamrider stack, no CSP violations."""

from __future__ import annotations

import base64

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from hosts.topology import load_topology
from tests.access.helpers import current_code

USERNAME = "bernie"
PASSWORD = "correct-horse-battery-staple"
BEAMRIDER_SERVICES = [
    "MySQL master",
    "NFS data-file server",
    "PHP front end",
    "Perlbal load balancer",
]

pytestmark = pytest.mark.e2e


@pytest.fixture
def bernie(transactional_db, django_user_model):
    """A superuser with the seed topology loaded, visible to the live server's thread."""
    load_topology()
    return django_user_model.objects.create_superuser(USERNAME, "bernie@example.org", PASSWORD)


def _sign_in(page, live_server, password: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_first_sign_in_enrols_a_second_factor_then_shows_the_beamrider_stack(
    live_server, bernie, page, console_errors, screenshot
) -> None:
    _sign_in(page, live_server, PASSWORD)

    # A superadmin reaches beamrider: the console opens only once a second factor is on.
    page.wait_for_url("**/access/two-factor/?required=1**")
    page.get_by_role("button", name="Set up an authenticator app").click()
    page.locator(".qr svg").wait_for()
    secret = page.locator("code.secret").inner_text()
    pending = TOTPDevice.objects.get(user=bernie, confirmed=False)
    assert base64.b32decode(secret) == pending.bin_key
    page.fill("#id_token", current_code(pending))
    page.get_by_role("button", name="Turn on two-factor").click()
    page.get_by_role("button", name="Done").click()

    card = page.locator("#host-beamrider")
    card.wait_for()
    assert page.url == f"{live_server.url}/"
    services = card.locator(".service-list li").all_inner_texts()
    for name in BEAMRIDER_SERVICES:
        assert any(name in text for text in services), f"{name!r} missing from {services}"
    assert screenshot(page, "dashboard").exists()
    assert console_errors == []


def test_wrong_password_is_refused(live_server, bernie, page, console_errors) -> None:
    _sign_in(page, live_server, "not-the-password")

    assert page.url.startswith(f"{live_server.url}/login/")
    error = page.locator("[role=alert]")
    error.wait_for()
    assert "correct username and password" in error.inner_text()
    assert page.locator("#host-beamrider").count() == 0
    assert console_errors == []
