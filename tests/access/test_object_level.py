"""What a person outside a zone sees of it: nothing, and every refusal is in the audit log.

carol operates sunjammer and holds nothing in beamrider (restricted); erin administers
sunjammer only.
"""

import csv
import io
import re

from django.urls import reverse

from hosts.models import GrowthPhase
from remora_admin.audit.models import AuditEvent

from .helpers import events, sign_in

BEAMRIDER_ZONE_HOSTS = ("beamrider", "remora2")


def _denials_of(user) -> list[AuditEvent]:
    return events("access.denied", actor=user)


def _main(response) -> str:
    """The page's own content, without the per-request nonce and CSRF token around it."""
    return re.search(r"<main.*</main>", response.text, re.S).group(0)


def _csv_rows(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


# --- carol cannot see beamrider ---------------------------------------------------------------


def test_carol_gets_a_404_for_beamrider_as_if_it_did_not_exist(carol):
    client = sign_in(carol)

    hidden = client.get(reverse("hosts:detail", args=["beamrider"]))
    missing = client.get(reverse("hosts:detail", args=["no-such-host"]))

    assert hidden.status_code == 404
    assert missing.status_code == 404
    assert _main(hidden) == _main(missing)


def test_carols_404_for_beamrider_is_audited_with_her_name_and_the_reason(carol, beamrider_host):
    beamrider = beamrider_host
    sign_in(carol).get(reverse("hosts:detail", args=["beamrider"]))

    [denial] = _denials_of(carol)
    assert denial.actor_name == "carol"
    assert denial.details["reason"] == "not visible"
    assert denial.details["action"] == "view"
    assert denial.details["path"] == "/hosts/beamrider/"
    # The log names what was asked for (its readers see the zone anyway); the page did not.
    assert (denial.target_type, denial.target_id) == ("hosts.host", str(beamrider.pk))
    assert denial.zone == "beamrider"


def test_carols_host_list_shows_sunjammer_and_nothing_of_the_beamrider_zone(carol):
    html = sign_in(carol).get(reverse("hosts:list")).text

    assert 'href="/hosts/sunjammer/"' in html
    for name in BEAMRIDER_ZONE_HOSTS:
        assert name not in html, f"{name} appears on carol's host list"


def test_carols_host_list_filtered_to_beamrider_is_empty(carol):
    response = sign_in(carol).get(reverse("hosts:list"), {"zone": "beamrider"})

    assert response.context["hosts"].count() == 0
    assert "No hosts in zone beamrider." in response.text
    for name in BEAMRIDER_ZONE_HOSTS:
        assert f'href="/hosts/{name}/"' not in response.text
    assert "beamrider.sugarlabs.org" not in response.text


def test_carols_dashboard_has_a_card_for_sunjammer_only(carol):
    response = sign_in(carol).get(reverse("dashboard"))
    html = response.text
    phase_title = str(GrowthPhase.objects.get(is_current=True))

    assert re.findall(r'id="host-([a-z0-9-]+)"', html) == ["sunjammer"]
    assert "remora2" not in html
    # The plan's own title ("Entire load on beamrider") is the only mention of the word.
    assert "beamrider" not in html.replace(phase_title, "")
    # The next phase lists only what it adds on hosts carol may see.
    assert [(p.host.name, p.kind) for p in response.context["next_phase"].added] == [
        ("sunjammer", "php_frontend")
    ]


def test_carols_phases_page_draws_no_box_on_the_beamrider_zones_hosts(carol):
    html = sign_in(carol).get(reverse("phases")).text

    drawn = set(re.findall(r'class="host-name">([^<]+)<', html))
    assert drawn == {"sunjammer"}
    for name in BEAMRIDER_ZONE_HOSTS:
        assert f"on {name}</li>" not in html
        assert f"from {name}</li>" not in html


def test_the_access_report_and_its_csv_are_forbidden_to_carol_and_both_refusals_audited(carol):
    client = sign_in(carol)

    page = client.get(reverse("access_report"))
    export = client.get(reverse("access_report_csv"))

    assert page.status_code == 403
    assert export.status_code == 403
    assert (
        "You need the zone admin role in a zone to see who can control each host. "
        "Ask a superadmin (the lead admin)." in page.text
    )
    assert b"beamrider" not in export.content
    denials = _denials_of(carol)
    assert [(d.details["path"], d.details["reason"]) for d in denials] == [
        ("/access/", "no_role"),
        ("/access/report.csv", "no_role"),
    ]
    assert {d.details["action"] for d in denials} == {"view_access_report"}
    assert {(d.target_type, d.target_repr) for d in denials} == {
        ("page", "/access/"),
        ("page", "/access/report.csv"),
    }
    assert events("access.report_exported") == []


def test_a_page_carol_may_see_writes_no_denial(carol):
    client = sign_in(carol)

    assert client.get(reverse("hosts:detail", args=["sunjammer"])).status_code == 200
    assert client.get(reverse("dashboard")).status_code == 200
    assert _denials_of(carol) == []


# --- erin reviews sunjammer only --------------------------------------------------------------


def test_erin_sees_only_sunjammer_in_the_access_report(erin, carol, dan, alice, bob):
    html = sign_in(erin).get(reverse("access_report")).text

    assert re.findall(r'id="access-([a-z0-9-]+)"', html) == ["sunjammer"]
    assert "<td>carol</td>" in html and "<td>dan</td>" in html
    # Who holds beamrider is not hers to review.
    assert "<td>alice</td>" not in html and "<td>bob</td>" not in html
    for name in BEAMRIDER_ZONE_HOSTS:
        assert f"access-{name}" not in html


def test_erins_csv_has_sunjammer_rows_only(erin, carol, dan, alice, bob):
    rows = _csv_rows(sign_in(erin).get(reverse("access_report_csv")))

    assert {r["host"] for r in rows} == {"sunjammer"}
    assert {r["zone"] for r in rows} == {"sunjammer"}
    people = {r["person"] for r in rows}
    assert {"carol", "dan", "erin"} <= people
    assert not people & {"alice", "bob"}
