"""API tokens in a real browser: a delegate makes a token (after confirming the password),
sees it once, uses it against the live server's API; the API's docs render under the CSP."""

from __future__ import annotations

import json
import urllib.request

import pytest
from django.contrib.auth import get_user_model

from hosts.topology import load_topology
from remora_admin.access.models import ApiToken, Grant, Role, Zone
from remora_admin.audit.models import AuditEvent

PASSWORD = "a-long-e2e-password-for-everyone"

pytestmark = pytest.mark.e2e


@pytest.fixture
def carol(transactional_db):
    load_topology()
    user = get_user_model().objects.create_user("carol", "carol@example.org", PASSWORD)
    Grant.objects.create(user=user, role=Role.OPERATOR, zone=Zone.objects.get(name="sunjammer"),
                         reason="community delegate")  # fmt: skip
    return user


def _sign_in(page, live_server) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "carol")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def _api(live_server, path: str, token: str) -> dict:
    request = urllib.request.Request(  # noqa: S310 (the live server, http)
        f"{live_server.url}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (http, ours)
        return json.load(answer)


def test_a_delegate_makes_a_token_sees_it_once_and_uses_it(
    live_server, carol, page, console_errors, screenshot
) -> None:
    _sign_in(page, live_server)
    page.get_by_role("link", name="API tokens").click()
    page.wait_for_url("**/access/confirm-password/**")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url("**/access/tokens/")
    assert "You have no API tokens yet" in page.locator("main").inner_text()
    # She holds no role in a restricted zone: nothing to ask about it.
    assert page.locator("#id_restricted").count() == 0

    page.fill("#id_name", "laptop CLI")
    page.check("input[name=scope][value=act]")
    page.select_option("#id_lifetime", "7d")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token").inner_text().strip()
    assert secret.startswith("rma_")
    assert screenshot(page, "api-token-created").exists()

    me = _api(live_server, "/api/me/", secret)
    assert me["username"] == "carol"
    assert me["token"]["scope"] == "act" and me["token"]["name"] == "laptop CLI"
    hosts = _api(live_server, "/api/hosts/", secret)
    assert [h["name"] for h in hosts] == ["sunjammer"]

    page.reload()  # shown once: never again, and no second token
    assert ApiToken.objects.filter(user=carol).count() == 1
    text = page.locator("main").inner_text()
    assert secret not in page.content()
    assert "laptop CLI" in text and secret[:12] in text
    token = ApiToken.objects.get(user=carol)
    assert token.digest != secret and secret not in json.dumps(
        list(AuditEvent.objects.values_list("details", flat=True))
    )

    page.get_by_role("button", name="Revoke").click()
    assert "revoked" in page.locator("main").inner_text()
    with pytest.raises(urllib.error.HTTPError) as refused:
        _api(live_server, "/api/me/", secret)
    assert refused.value.code == 401
    assert "revoked" in json.load(refused.value)["detail"]
    assert console_errors == []


def test_the_api_docs_render_under_the_content_security_policy(
    live_server, carol, page, console_errors, screenshot
) -> None:
    _sign_in(page, live_server)
    page.goto(f"{live_server.url}/api/docs/")
    page.locator(".opblock-summary-path").first.wait_for(timeout=15000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/runs/" in [p.strip() for p in paths]
    assert screenshot(page, "api-docs").exists()
    assert console_errors == []
