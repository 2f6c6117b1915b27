"""The launch page in a real browser: a host nothing can run on says so at once, once; the zone
admin gets the link to the fix, the operator gets disabled launch buttons and whom to ask."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from hosts.models import Host
from remora_admin.access.models import Grant, Role, Zone

PASSWORD = "a-long-e2e-password-for-everyone"
SENTENCE = "lab9 has no SSH credential, so no run can sign in there"

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def people(transactional_db):
    zone = Zone.objects.create(name="lab", sensitivity=Zone.Sensitivity.STANDARD)
    Host.objects.create(
        name="lab9",
        address="127.0.0.1",
        ssh_port=22,
        ssh_user="remora",
        zone=zone,
        host_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKhk",
        host_key_fingerprint="SHA256:test",
    )
    cast = {}
    for name, role in (("alice", Role.ZONE_ADMIN), ("carol", Role.OPERATOR)):
        user = get_user_model().objects.create_user(name, f"{name}@example.org", PASSWORD)
        Grant.objects.create(user=user, role=role, zone=zone, reason="e2e")
        cast[name] = user
    return cast


def _sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_an_operator_is_told_at_once_and_cannot_press_launch(
    live_server, people, page, console_errors, screenshot
):
    _sign_in(page, live_server, "carol")
    page.goto(f"{live_server.url}/hosts/lab9/launch/")

    notice = page.locator("#launch-blockers")
    assert SENTENCE in notice.inner_text()
    assert page.inner_text("main").count(SENTENCE) == 1
    assert notice.locator("a").count() == 0  # no fix this person may make

    page.click("article.recipe:has-text('Host health') >> text=Choose")
    page.click("button[name=preview]")
    assert page.inner_text("main").count(SENTENCE) == 1
    assert page.locator("button[name=launch]").is_disabled()
    assert page.locator("button[name=dry_run]").is_disabled()
    screenshot(page, "launch-blocked")
    assert console_errors == []


def test_a_zone_admin_follows_the_link_to_the_fix(live_server, people, page, console_errors):
    _sign_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/hosts/lab9/launch/")

    page.locator("#launch-blockers").get_by_role("link", name="Assign a credential").click()

    page.wait_for_url(f"{live_server.url}/hosts/lab9/edit/")
    assert page.locator("select[name=credential]").count() == 1
    assert console_errors == []
