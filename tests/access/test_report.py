"""Who can control each host: the access report, its CSV, and the dashboard's counts and warnings.

The grants are demo-like: beamrider (restricted) is run by a few people, sunjammer (standard)
by a wider circle of community delegates.
"""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from remora_admin.access.models import Grant, Role, Zone

from .helpers import events, give, make_user, sign_in

NO_EXPIRY_WARNING = "in the restricted zone beamrider never expire"


@pytest.fixture
def demo(cast):
    """The cast plus two more sunjammer delegates, frank (operator) and grace (viewer)."""
    give(make_user("frank"), Role.OPERATOR, "sunjammer")
    give(make_user("grace"), Role.VIEWER, "sunjammer")
    return cast


def _report_counts(html: str) -> dict[str, int]:
    """host → the number of people who can operate it, as the report shows it."""
    found = re.findall(
        r'<article id="access-([a-z0-9-]+)".*?class="controllers" data-count="(\d+)"', html, re.S
    )
    return {host: int(count) for host, count in found}


def _dashboard_counts(html: str) -> dict[str, int]:
    found = re.findall(
        r'id="host-([a-z0-9-]+)".*?<footer class="controllers" data-count="(\d+)"', html, re.S
    )
    return {host: int(count) for host, count in found}


def _csv(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


# --- The circles ------------------------------------------------------------------------------


def test_fewer_people_can_operate_beamrider_than_sunjammer(demo):
    html = sign_in(demo.bernie).get(reverse("access_report")).text

    counts = _report_counts(html)
    # beamrider: bernie (superuser), alice, bob. sunjammer: bernie, carol, erin, frank.
    assert counts == {"beamrider": 3, "remora2": 3, "sunjammer": 4}
    assert counts["beamrider"] < counts["sunjammer"]


def test_the_report_lists_who_can_do_what_through_which_grant(demo):
    response = sign_in(demo.ivan).get(reverse("access_report"))

    rows = dict(response.context["rows"])
    by_host = {host.name: za for host, za in rows.items()}
    beamrider = {h.user.username: h.capabilities for h in by_host["beamrider"].holders}
    assert beamrider == {
        "bernie": ["view", "operate", "provision", "approve"],
        "alice": ["view", "operate", "provision", "approve"],
        "bob": ["view", "operate"],
        "ivan": ["view"],
    }
    sunjammer = {h.user.username: h.capabilities for h in by_host["sunjammer"].holders}
    assert sunjammer["dan"] == ["view"] and sunjammer["grace"] == ["view"]
    assert sunjammer["frank"] == ["view", "operate"]
    assert "alice" not in sunjammer and "bob" not in sunjammer


def test_the_dashboard_shows_how_many_people_can_control_each_host(demo):
    html = sign_in(demo.bernie).get(reverse("dashboard")).text

    assert _dashboard_counts(html) == {"beamrider": 3, "remora2": 3, "sunjammer": 4}
    assert "3 people can control this host" in html
    assert "4 people can control this host" in html


def test_a_revoked_grant_leaves_the_count_at_once(demo):
    Grant.objects.filter(user__username="frank").update(revoked_at=timezone.now())

    html = sign_in(demo.bernie).get(reverse("dashboard")).text

    assert _dashboard_counts(html)["sunjammer"] == 3


# --- Warnings ---------------------------------------------------------------------------------


@override_settings(REMORA_RESTRICTED_CONTROLLER_LIMIT=2)
def test_a_restricted_zone_with_more_operators_than_the_limit_shows_a_warning(demo):
    dashboard = sign_in(demo.bernie).get(reverse("dashboard")).text
    report = sign_in(demo.bernie).get(reverse("access_report")).text

    assert (
        "3 people can operate the restricted zone beamrider, more than the limit of 2" in dashboard
    )
    assert "restricted zone sunjammer" not in dashboard  # standard zones have no limit
    assert report.count('<span class="badge warn">more than 2</span>') == 2  # beamrider, remora2


def test_within_the_limit_there_is_no_warning(demo):
    html = sign_in(demo.bernie).get(reverse("dashboard")).text

    assert "more than the limit" not in html


def test_a_zones_own_limit_wins_over_the_default(demo):
    Zone.objects.filter(name="beamrider").update(controller_limit=1)

    html = sign_in(demo.bernie).get(reverse("dashboard")).text

    assert "3 people can operate the restricted zone beamrider, more than the limit of 1" in html


def test_a_grant_without_expiry_in_a_restricted_zone_shows_a_warning(demo):
    html = sign_in(demo.bernie).get(reverse("dashboard")).text

    # alice's and bob's grants never expire.
    assert f"2 grants {NO_EXPIRY_WARNING}" in html


def test_when_every_restricted_grant_expires_there_is_no_expiry_warning(demo):
    Grant.objects.filter(zone__name="beamrider").update(
        expires_at=timezone.now() + timedelta(days=30)
    )

    html = sign_in(demo.bernie).get(reverse("dashboard")).text

    assert NO_EXPIRY_WARNING not in html
    # sunjammer's grants never expire either, and that is fine in a standard zone.
    assert "never expire" not in html


# --- CSV --------------------------------------------------------------------------------------


def test_the_csv_has_a_row_per_host_and_person_and_its_export_is_audited(demo):
    response = sign_in(demo.bernie).get(reverse("access_report_csv"))

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="remora-access-')
    rows = _csv(response)
    pairs = [(r["host"], r["person"]) for r in rows]
    beamrider_people = {"bernie", "ivan", "alice", "bob"}
    sunjammer_people = {"bernie", "ivan", "carol", "dan", "erin", "frank", "grace"}
    assert sorted(pairs) == sorted(
        [("beamrider", p) for p in beamrider_people]
        + [("remora2", p) for p in beamrider_people]
        + [("sunjammer", p) for p in sunjammer_people]
    )
    bob = next(r for r in rows if r["host"] == "beamrider" and r["person"] == "bob")
    assert (bob["view"], bob["operate"], bob["provision"]) == ("yes", "yes", "")
    assert bob["roles"] == "operator"
    assert bob["until"] == "never"
    assert bob["two_factor"] == "yes"
    [exported] = events("access.report_exported", actor=demo.bernie)
    assert exported.details == {"rows": len(rows), "format": "csv"}


def test_the_csv_shows_when_temporary_access_ends(demo):
    until = (timezone.now() + timedelta(days=7)).replace(microsecond=0)
    Grant.objects.filter(user__username="frank").update(expires_at=until)

    rows = _csv(sign_in(demo.erin).get(reverse("access_report_csv")))

    frank = next(r for r in rows if r["person"] == "frank")
    assert frank["until"] == until.isoformat()
