"""Runs in a real browser: launch from a host's page and watch the output arrive live; a
provisioning run waits for a second person, who approves it in their own browser."""

import pytest
from django.contrib.auth import get_user_model
from django_otp.plugins.otp_totp.models import TOTPDevice

from jobs.models import JobRun, RunState
from remora_admin.access.models import Grant, Role
from tests.access.helpers import current_code

from .worker_process import start_worker, stop, wait_listening

PASSWORD = "a-long-e2e-password-for-everyone"
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(redis_conn, transactional_db):
    process = start_worker()
    wait_listening(process, redis_conn)
    yield process
    stop(process)


def _person(name, zone, role, **extra):
    user = get_user_model().objects.create_user(name, f"{name}@example.org", PASSWORD, **extra)
    if role:
        Grant.objects.create(user=user, role=role, zone=zone, reason="e2e")
    return user


def _superuser(name):
    """A superuser, enrolled with a second factor (a superadmin reaches restricted zones)."""
    user = get_user_model().objects.create_superuser(name, f"{name}@example.org", PASSWORD)
    TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return user


def _sign_in(page, live_server, user):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is not None:
        page.wait_for_url("**/two-factor/verify/**")
        page.fill("#id_token", current_code(device))
        page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{live_server.url}/")


def test_an_operator_launches_host_health_and_watches_it_live(
    live_server, page, console_errors, screenshot, lab_host, zone, worker
):
    carol = _person("carol-e2e", zone, Role.OPERATOR)
    _sign_in(page, live_server, carol)

    page.goto(f"{live_server.url}{lab_host.get_absolute_url()}")
    page.click("text=Launch a recipe")
    page.click("article.recipe:has-text('Host health') >> text=Choose")
    page.click("button[name=preview]")
    assert "uptime" in page.inner_text("#script-preview")
    page.click("button[name=launch]")

    page.wait_for_selector("#output >> text=== uptime and load", timeout=15000)
    page.wait_for_selector("#run-state >> text=Succeeded", timeout=15000)
    assert page.locator("#live [hx-trigger]").count() == 0  # polling has stopped
    screenshot(page, "run-live")
    assert console_errors == []
    assert JobRun.objects.get().state == RunState.SUCCEEDED


def test_output_appears_while_the_run_is_still_running(
    live_server, page, console_errors, lab_host, zone, worker
):
    root = _superuser("root-e2e")
    _sign_in(page, live_server, root)

    page.goto(f"{live_server.url}/hosts/{lab_host.name}/launch/?recipe=adhoc")
    page.fill("#id_command", "for i in 1 2 3 4 5; do echo line-$i; sleep 1; done")
    page.uncheck("#id_changes_host")
    page.click("button[name=preview]")
    page.click("button[name=launch]")

    page.wait_for_selector("#output >> text=line-1", timeout=15000)
    assert page.inner_text("#run-state") == "Running"
    assert "line-5" not in page.inner_text("#output")
    page.wait_for_selector("#run-state >> text=Succeeded", timeout=20000)
    assert "line-5" in page.inner_text("#output")
    assert console_errors == []


def test_a_provisioning_run_is_approved_by_a_second_person_in_the_browser(
    live_server, browser, page, console_errors, screenshot, lab_host, zone, worker, make_recipe
):
    from jobs import launch as launching
    from jobs.recipes import get

    zone.requires_approval = True
    zone.save()
    approver = _person("alice-e2e", zone, Role.ZONE_ADMIN)
    requester = _superuser("root-e2e")
    # The worker process knows the built-in recipes only; an ad-hoc run stands in for a
    # provisioning one by being held for approval as the launch does for provisioning recipes.

    [run] = launching.launch(requester, get("adhoc"), [lab_host], {"command": "echo provisioned"})
    JobRun.objects.filter(pk=run.pk).update(state=RunState.AWAITING_APPROVAL, queued_at=None)
    # Drop the delivery that was queued before the hold.
    from jobs import queue

    queue.queue().connection.flushdb()

    context = browser.new_context()
    theirs = context.new_page()
    _sign_in(theirs, live_server, approver)
    theirs.goto(f"{live_server.url}{run.get_absolute_url()}")
    assert "waits for a second person" in theirs.inner_text("main")
    theirs.fill("input[placeholder='Why it is fine']", "read the script, fine")
    theirs.click("button:has-text('Approve')")
    theirs.wait_for_selector("#run-state >> text=Succeeded", timeout=20000)
    context.close()

    _sign_in(page, live_server, requester)
    page.goto(f"{live_server.url}{run.get_absolute_url()}")
    assert "approved by alice-e2e" in page.inner_text("main")
    assert "read the script, fine" in page.inner_text("main")
    screenshot(page, "run-approval")
    assert console_errors == []
