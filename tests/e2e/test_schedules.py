"""A schedule in a real browser, with a real ticker and worker: a zone admin creates one, sees
its next runs in the schedule's own time zone as she types, saves it, and sees it fire on its
own at the next minute (a short interval for the test) and its run succeed."""

import subprocess
import sys
import time

import pytest

from jobs.models import Occurrence, Schedule
from tests.jobs.worker_process import ROOT, start_worker, stop, wait_listening, worker_env

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_schedule_made_in_the_browser_previews_its_time_zone_and_fires(
    live_server, page, console_errors, screenshot, lab_host, alice, redis_conn
):
    worker = start_worker()
    ticker = subprocess.Popen(
        [sys.executable, "manage.py", "remora_ticker", "--interval", "1"],
        cwd=ROOT, env=worker_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_listening(worker, redis_conn)
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", "alice")
        page.fill("#id_password", "alice-pass-1")
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")

        page.goto(f"{live_server.url}/schedules/new/")
        page.click("article.recipe:has-text('Host health') >> text=Choose")
        page.fill("#id_name", "lab1-health")
        page.check(f"input[name=hosts][value='{lab_host.pk}']")
        page.fill("#id_cron", "* * * * *")
        page.fill("#id_timezone", "Asia/Tokyo")
        page.wait_for_selector("#preview >> text=Next runs (Asia/Tokyo)")
        assert page.locator("#preview li").count() == 5
        assert page.locator("#preview li").first.inner_text().endswith("JST")
        screenshot(page, "schedule-preview")
        page.click("text=Save the schedule")
        schedule_url = f"{live_server.url}{Schedule.objects.get().get_absolute_url()}"
        page.wait_for_url(schedule_url)
        assert "JST" in page.locator("dl.facts").inner_text()

        deadline = time.monotonic() + 80  # the next minute, then the run
        while time.monotonic() < deadline:
            occurrence = Occurrence.objects.first()
            if occurrence and occurrence.runs.filter(state="succeeded").exists():
                break
            time.sleep(1)
        page.goto(schedule_url)
        page.wait_for_selector("td >> text=Launched")
        page.wait_for_selector("td >> text=Succeeded")
        screenshot(page, "schedule-fired")
        assert "1 run(s) on lab1" in page.locator("table").inner_text()
        assert console_errors == []
    finally:
        stop(worker)
        if ticker.poll() is None:
            ticker.terminate()
        ticker.wait(timeout=15)
