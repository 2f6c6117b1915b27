"""The Workers page in a real browser: an auditor watches a second machine's worker join and
the page shows it by itself (it refreshes every 5 s), under the CSP, with no console error."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.access.helpers import authenticator, give, make_user, sign_in_verified_in_browser
from tests.fixtures.workers import register

pytestmark = pytest.mark.e2e


def test_a_worker_that_joins_shows_up_without_a_reload(
    live_server, transactional_db, redis_conn, page, console_errors, screenshot
) -> None:
    ivan = make_user("ivan")
    give(ivan, "auditor")
    authenticator(ivan)
    register("console", 101)
    sign_in_verified_in_browser(page, live_server.url, ivan)

    page.get_by_role("link", name="Workers").click()
    summary = page.locator("#workers-summary")
    expect(summary).to_contain_text("1 worker alive on 1 machine")
    register("worker2", 7)

    expect(summary).to_contain_text("2 workers alive on 2 machines", timeout=12_000)
    expect(page.locator("#machine-worker2")).to_contain_text("1 worker, 0 busy")
    screenshot(page, "workers")
    assert console_errors == []
