"""Who sees which events, and when they happened in the viewer's own time: a zone admin reads
the events of the zones they administer (list, event page, export), nothing else; times are in
the viewer's zone with UTC on hover, and the day filters are the viewer's days."""

import csv
import io
import re
from datetime import UTC, datetime

import pytest
import time_machine

from remora_admin.audit.log import record
from tests.access.helpers import authenticator, give, make_user, sign_in
from tests.audit.test_review import shown

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(topology):
    with time_machine.travel(datetime(2026, 11, 20, 23, 30, tzinfo=UTC), tick=False):
        return {
            "beamrider": record("service.updated", zone="beamrider", actor_name="bob").sequence,
            "sunjammer": record("service.updated", zone="sunjammer", actor_name="carol").sequence,
            "no zone": record("auth.login", actor_name="dan").sequence,
        }


@pytest.fixture
def alice(topology):
    user = make_user("alice")
    give(user, "zone_admin", "beamrider")
    authenticator(user)
    return sign_in(user, verified=True)


def test_a_zone_admin_reads_only_the_events_of_their_zones(alice, events):
    page = alice.get("/audit/")
    assert page.status_code == 200
    listed = set(shown(page))
    assert events["beamrider"] in listed
    assert not {events["sunjammer"], events["no zone"]} & listed
    assert "the zones you administer: beamrider" in page.content.decode()
    assert "Verify the chain" not in page.content.decode()  # the auditor's tools
    assert alice.get(f"/audit/{events['beamrider']}/").status_code == 200
    assert alice.get(f"/audit/{events['sunjammer']}/").status_code == 404
    assert alice.get(f"/audit/{events['no zone']}/").status_code == 404
    exported = list(csv.DictReader(io.StringIO(b"".join(alice.get(
        "/audit/export.csv").streaming_content).decode())))  # fmt: skip
    assert {row["zone"] for row in exported} == {"beamrider"}


def test_an_auditor_reads_every_event(auditor, events):
    listed = set(shown(auditor.get("/audit/")))
    assert set(events.values()) <= listed


def test_times_are_in_the_viewers_zone_with_utc_on_hover(auditor, events):
    auditor.cookies["tz"] = "Europe/Berlin"
    page = auditor.get("/audit/").content.decode()
    assert "When (Europe/Berlin)" in page
    # 23:30 UTC on the 20th is 00:30 on the 21st in Berlin.
    assert re.search(
        r'<time datetime="2026-11-20T23:30:00\+00:00" title="2026-11-20 23:30:00 UTC">'
        r"2026-11-21 00:30:00</time>", page)  # fmt: skip
    assert 'data-tz="Europe/Berlin"' in page
    detail = auditor.get(f"/audit/{events['beamrider']}/").content.decode()
    assert "2026-11-21 00:30:00" in detail and 'title="2026-11-20 23:30:00 UTC"' in detail


def test_the_day_filters_are_the_viewers_days(auditor, events):
    auditor.cookies["tz"] = "Europe/Berlin"
    assert events["beamrider"] in shown(auditor.get("/audit/", {"since": "2026-11-21"}))
    auditor.cookies["tz"] = "UTC"
    assert events["beamrider"] not in shown(auditor.get("/audit/", {"since": "2026-11-21"}))


@pytest.mark.parametrize("cookie", ["Not/AZone", "../../etc/passwd", "x" * 300, ""])
def test_a_zone_that_is_not_one_falls_back_to_utc(auditor, events, cookie):
    auditor.cookies["tz"] = cookie
    page = auditor.get("/audit/")
    assert page.status_code == 200
    assert "When (UTC)" in page.content.decode()


def test_the_page_and_its_htmx_part_are_cached_apart(auditor, events):
    page = auditor.get("/audit/", {"zone": "beamrider"})
    part = auditor.get("/audit/", {"zone": "beamrider"}, headers={"HX-Request": "true"})
    assert "HX-Request" in page.headers["Vary"] and "HX-Request" in part.headers["Vary"]
    body = part.content.decode()
    assert "<html" not in body and 'class="export"' in body
    # The export links follow the filter the list was updated with.
    assert 'href="/audit/export.csv?zone=beamrider"' in body


def test_the_run_kind_filter_keeps_the_events_of_runs_of_that_kind(auditor, topology):
    import uuid

    from hosts.models import Host
    from jobs.models import JobRun

    beamrider = Host.objects.get(name="beamrider")

    def run_of(recipe):
        run = JobRun.objects.create(batch=uuid.uuid4(), recipe=recipe, script="true",
                                    host=beamrider, timeout=60)  # fmt: skip
        return record("run.requested", target=run).sequence

    provision, check = run_of("mariadb_master"), run_of("service_health")
    listed = shown(auditor.get("/audit/", {"kind": "provision"}))
    assert provision in listed and check not in listed
    assert check in shown(auditor.get("/audit/", {"kind": "check"}))


def test_the_host_filter_finds_a_hosts_runs_changes_and_mentions(auditor, topology):
    import uuid

    from hosts.models import Host
    from jobs.models import JobRun

    beamrider = Host.objects.get(name="beamrider")
    run = JobRun.objects.create(batch=uuid.uuid4(), recipe="mariadb_master", script="true",
                                host=beamrider, timeout=60)  # fmt: skip
    of_run = record("run.requested", target=run).sequence
    of_host = record("host.updated", target=beamrider).sequence
    named = record("plan.step_failed", details={"host": "beamrider"}).sequence
    elsewhere = record("host.updated", target=Host.objects.get(name="sunjammer")).sequence

    listed = shown(auditor.get("/audit/", {"host": "beamrider"}))
    assert {of_run, of_host, named} <= set(listed) and elsewhere not in listed
