"""An auditor's review in a real browser (issue 11): she filters the log to "beamrider,
provisioning, last 7 days", the rows update in place and the URL keeps the filters; she opens a
run's story (who asked, the exact script, the approval and its reason, start and end with exit
status), goes back with the filters still applied, and exports exactly those events as CSV.

The runs are real: launched, approved and executed by the jobs code on the loopback sshd, so the
events are the ones the product writes. "Provisioning" is the run kind filter (the recipe's
category): it keeps the events of provisioning runs and leaves the check on beamrider out.
"""

import csv
import io
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.utils import timezone
from playwright.sync_api import expect

from hosts.credentials import encrypt, fingerprint, parse_private_key
from hosts.models import Credential, Host
from jobs import launch as launching
from jobs.recipes import Category
from jobs.tasks import execute_run
from remora_admin.audit.models import AuditEvent
from tests.access.helpers import (
    authenticator,
    give,
    make_user,
    sign_in_verified_in_browser,
)
from tests.jobs.conftest import make_recipe  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PROVISION = "provision_remora_stack"
SCRIPT = "echo provisioning the remora stack\nuname -s"
REASON = "agreed in the Tuesday maintenance window"


def _reach_sshd(name: str, sshd, ssh_keys) -> Host:
    """Point the seed's host `name` at the loopback sshd, with a trusted key and a credential of
    its own zone, so that runs there really run."""
    host = Host.objects.get(name=name)
    private, kind, public = parse_private_key(ssh_keys.client_key_path.read_text())
    credential = Credential.objects.create(
        name=f"{name}-key", zone=host.zone, key_type=kind, public_key=public,
        fingerprint=fingerprint(public), encrypted_private_key=encrypt(private),
    )  # fmt: skip
    Host.objects.filter(pk=host.pk).update(
        address=sshd.address, ssh_port=sshd.port, ssh_user=sshd.user, credential=credential,
        host_key=sshd.host_public_key, host_key_fingerprint=fingerprint(sshd.host_public_key),
    )  # fmt: skip
    return Host.objects.get(pk=host.pk)


def _story(run) -> list[AuditEvent]:
    events = AuditEvent.objects.filter(target_type="jobs.jobrun", target_id=str(run.pk))
    return list(events.order_by("sequence"))


@pytest.fixture
def history(topology, sshd_host, ssh_keys, make_recipe):  # noqa: F811 (the fixture above)
    """A provisioning run on beamrider (asked by alice, approved by bob, run), and the noise the
    filters must leave out: the same recipe on sunjammer, a check on beamrider, and the same
    recipe asked on beamrider ten days ago."""
    beamrider = _reach_sshd("beamrider", sshd_host, ssh_keys)
    sunjammer = _reach_sshd("sunjammer", sshd_host, ssh_keys)
    alice, bob = make_user("alice"), make_user("bob")
    for zone in ("beamrider", "sunjammer"):
        give(alice, "zone_admin", zone)
    give(bob, "zone_admin", "beamrider")
    provision = make_recipe(PROVISION, lambda p: SCRIPT, category=Category.PROVISION)
    check = make_recipe("check_remora_stack", lambda p: "true", category=Category.CHECK)

    with time_machine.travel(timezone.now() - timedelta(days=10)):
        [old] = launching.launch(alice, provision, [beamrider], {}, second_factor=True)
    [run] = launching.launch(alice, provision, [beamrider], {}, second_factor=True)
    launching.approve(bob, run, REASON, second_factor=True)
    execute_run(run.pk)
    [elsewhere] = launching.launch(alice, provision, [sunjammer], {}, second_factor=True)
    [checked] = launching.launch(alice, check, [beamrider], {}, second_factor=True)
    for noise in (elsewhere, checked):
        execute_run(noise.pk)
    run.refresh_from_db()
    assert run.state == "succeeded", run.error
    noise = {"old": _story(old), "sunjammer": _story(elsewhere), "check": _story(checked)}
    assert all(noise.values()), noise  # the noise is in the log, for the filters to leave out
    return run, noise


def _row_link(page, sequence: int):
    return page.locator("#audit-rows").get_by_role("link", name=str(sequence), exact=True)


def _sign_in_verified(page, live_server, user) -> None:
    sign_in_verified_in_browser(page, live_server.url, user)


def test_an_auditor_filters_opens_a_runs_story_and_exports_csv(
    live_server, page, console_errors, screenshot, history
) -> None:
    run, noise = history
    ivan = make_user("ivan")
    give(ivan, "auditor")
    authenticator(ivan)
    week_ago = (timezone.now() - timedelta(days=7)).date().isoformat()
    wanted = {"zone": ["beamrider"], "group": ["run"], "since": [week_ago], "kind": ["provision"]}
    story = _story(run)
    assert [e.action for e in story] == [
        "run.requested", "run.approved", "run.started", "run.succeeded"
    ]  # fmt: skip
    newest_first = [str(e.sequence) for e in reversed(story)]
    sequences = page.locator("#audit-rows tr td:first-child a")

    _sign_in_verified(page, live_server, ivan)
    page.get_by_role("link", name="Audit", exact=True).click()
    page.wait_for_url(f"{live_server.url}/audit/")
    for events in noise.values():  # unfiltered, the noise is on the page
        expect(_row_link(page, events[-1].sequence)).to_have_count(1)
    page.evaluate("window.stayedOnPage = true")  # gone if the page reloads instead of htmx

    page.fill("input[name=zone]", "beamrider")
    page.press("input[name=zone]", "Tab")  # a text input changes when it loses focus
    page.select_option("select[name=group]", "run")
    page.fill("input[name=since]", week_ago)
    page.select_option("select[name=kind]", "provision")
    page.wait_for_url(lambda url: parse_qs(urlsplit(url).query) == wanted)
    expect(sequences).to_have_text(newest_first)
    assert page.evaluate("window.stayedOnPage") is True, "the rows should update in place"
    screenshot(page, "audit-review-filtered")
    # What the export links export is what the rows show (an auditor may export right here).
    for name in ("CSV", "JSON Lines"):
        href = page.get_by_role("link", name=name, exact=True).get_attribute("href")
        assert parse_qs(urlsplit(href).query) == wanted, f"the {name} link exports {href}"

    requested = story[0]
    _row_link(page, requested.sequence).click()
    page.wait_for_url(f"{live_server.url}/audit/{requested.sequence}/")
    assert "run.requested" in page.locator("h1").inner_text()
    assert "by alice" in page.locator("h1").inner_text()
    steps = page.locator("ol.story > li")
    expect(steps).to_have_count(4)
    texts = steps.all_inner_texts()
    assert "run.requested" in texts[0] and "by alice" in texts[0]
    assert "run.approved" in texts[1] and "by bob" in texts[1] and f"“{REASON}”" in texts[1]
    assert "run.started" in texts[2]
    assert "run.succeeded" in texts[3] and "(exit 0)" in texts[3]
    assert page.locator("pre.script").inner_text().strip() == run.script.strip()
    assert SCRIPT in run.script
    expect(page.get_by_role("link", name="The run and its output")).to_have_attribute(
        "href", f"/runs/{run.pk}/"
    )
    screenshot(page, "audit-review-story")

    page.go_back()
    page.wait_for_url(lambda url: parse_qs(urlsplit(url).query) == wanted)
    expect(sequences).to_have_text(newest_first)
    expect(page.locator("input[name=zone]")).to_have_value("beamrider")
    expect(page.locator("select[name=group]")).to_have_value("run")
    expect(page.locator("input[name=since]")).to_have_value(week_ago)
    expect(page.locator("select[name=kind]")).to_have_value("provision")

    with page.expect_download() as downloading:
        page.get_by_role("link", name="CSV", exact=True).click()
    text = Path(downloading.value.path()).read_text(encoding="utf-8")
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert header[0] == "sequence" and {"action", "zone", "hash"} <= set(header)
    exported = [(r[0], r[header.index("action")], r[header.index("hash")]) for r in rows]
    assert exported == [(str(e.sequence), e.action, e.hash) for e in reversed(story)]
    [export] = AuditEvent.objects.filter(action="audit.exported", actor=ivan)
    assert export.details["format"] == "csv"
    assert export.details["filters"] == {k: v[0] for k, v in wanted.items()}
    assert console_errors == []
