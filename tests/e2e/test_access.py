"""Access in a real browser: a delegate sees only their zone; the lead admin grants access.

The lead admin's grant goes the whole way a person goes: Access → Grant access → confirm the
password (sudo mode) → fill the form → the access report lists the new operator.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from hosts.topology import load_topology
from remora_admin.access.models import Grant, Role, Zone
from remora_admin.audit.models import AuditEvent
from tests.access.helpers import current_code

PASSWORD = "a-long-e2e-password-for-everyone"

pytestmark = pytest.mark.e2e


@pytest.fixture
def people(transactional_db):
    """The topology and the cast, visible to the live server's thread."""
    load_topology()
    User = get_user_model()
    bernie = User.objects.create_superuser("bernie", "bernie@example.org", PASSWORD)
    TOTPDevice.objects.create(user=bernie, name="Authenticator app", confirmed=True)
    sunjammer = Zone.objects.get(name="sunjammer")
    cast = {"bernie": bernie}
    for name, role in (("carol", Role.OPERATOR), ("dan", Role.VIEWER)):
        user = User.objects.create_user(name, f"{name}@example.org", PASSWORD)
        Grant.objects.create(
            user=user, role=role, zone=sunjammer, reason="community delegate", granted_by=bernie
        )
        cast[name] = user
    return cast


def _sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def _cell(page, host: str, person: str, column: str):
    """The report's cell for `person` under `column` in the card of `host`."""
    table = page.locator(f"#access-{host} table")
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    row = table.locator("tbody tr").filter(has=page.locator(f'td:text-is("{person}")'))
    return row.locator("td").nth(headers.index(column))


def test_a_delegate_sees_only_sunjammer_on_the_dashboard(
    live_server, people, page, console_errors, screenshot
) -> None:
    _sign_in(page, live_server, "carol")

    page.locator("#host-sunjammer").wait_for()
    assert page.url == f"{live_server.url}/"
    cards = page.locator(".host-card").evaluate_all("cards => cards.map(c => c.id)")
    assert cards == ["host-sunjammer"]
    assert page.locator("#host-beamrider").count() == 0
    assert page.locator("#host-remora2").count() == 0
    assert page.get_by_role("link", name="Access").count() == 0, "carol may not review access"
    screenshot(page, "access-delegate-dashboard")
    assert console_errors == []


def test_the_lead_admin_grants_dan_operator_on_sunjammer_for_a_week(
    live_server, people, page, console_errors, screenshot
) -> None:
    _sign_in(page, live_server, "bernie")
    # Granting needs a session verified with the second factor: the code from the phone.
    page.wait_for_url("**/access/two-factor/verify/**")
    page.fill("#id_token", current_code(TOTPDevice.objects.get(user=people["bernie"])))
    page.get_by_role("button", name="Verify").click()
    page.get_by_role("link", name="Access", exact=True).click()
    page.get_by_role("button", name="Grant access").click()

    # Sudo mode: the password again, then back to the form.
    page.wait_for_url("**/access/confirm-password/**")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url("**/access/grants/new/")

    week_ahead = (timezone.now() + timedelta(days=7)).replace(second=0, microsecond=0)
    page.select_option("#id_user", "dan")
    page.select_option("#id_role", "operator")
    page.select_option("#id_zone", "sunjammer")
    page.fill("#id_expires_at", week_ahead.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#id_reason", "covers carol's holidays")
    page.get_by_role("button", name="Grant").click()

    page.wait_for_url(f"{live_server.url}/access/")
    assert "Granted: Operator in sunjammer for dan." in page.locator("main").inner_text()
    assert _cell(page, "sunjammer", "dan", "Operate").inner_text().strip() == "✔"
    through = _cell(page, "sunjammer", "dan", "Through").inner_text()
    assert "Operator (sunjammer) — covers carol's holidays" in through
    assert _cell(page, "beamrider", "dan", "Operate").count() == 0
    assert screenshot(page, "access-report").exists()

    grant = Grant.objects.get(user=people["dan"], role=Role.OPERATOR)
    assert grant.zone.name == "sunjammer"
    assert grant.expires_at == week_ahead
    assert AuditEvent.objects.filter(
        action="grant.created", actor=people["bernie"], target_id=str(grant.pk)
    ).exists()
    assert AuditEvent.objects.filter(action="auth.reauthenticated", actor=people["bernie"]).exists()
    assert console_errors == []
