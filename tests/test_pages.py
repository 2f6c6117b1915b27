"""The console's pages as a superuser sees them, with the seed topology loaded."""

import re

import pytest
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from remora_admin.audit.log import record
from remora_admin.audit.models import AuditEvent

SCRIPT_TAG = re.compile(rb"<script\b[^>]*>", re.I)
NONCE_ATTR = re.compile(rb'\snonce="([^"]+)"')


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_superuser(
        "alice", email="alice@example.org", password="alice-password-1"
    )


@pytest.fixture
def signed_in(client, alice, topology):
    """Alice enrolled a second factor (a superadmin must) and verified this session."""
    device = TOTPDevice.objects.create(user=alice, name="Authenticator app", confirmed=True)
    client.force_login(alice)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def _header_nonce(response) -> str:
    policy = response.headers["Content-Security-Policy"]
    script_src = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
    match = re.search(r"'nonce-([^']+)'", script_src)
    assert match, policy
    return match.group(1)


# --- Dashboard --------------------------------------------------------------------------------


def test_the_dashboard_shows_a_card_for_each_host(signed_in):
    response = signed_in.get("/")

    assert response.status_code == 200
    for name in ("beamrider", "sunjammer", "remora2"):
        assert f'id="host-{name}"'.encode() in response.content
    assert b"planned" in response.content  # remora2 is not active yet


def test_the_dashboard_shows_the_services_running_on_beamrider(signed_in):
    response = signed_in.get("/")

    card = response.content.split(b'id="host-beamrider"')[1].split(b"</article>")[0]
    for kind in (b"MySQL master", b"NFS data-file server", b"PHP front end", b"Perlbal"):
        assert kind in card


def test_the_dashboard_shows_the_current_phase(signed_in):
    response = signed_in.get("/")

    assert b'Now in <a href="/phases/">Phase 1: Entire load on beamrider</a>' in response.content


def test_the_dashboard_shows_what_phase_2_adds(signed_in):
    response = signed_in.get("/")

    assert b"Next: Phase 2: A PHP front end on sunjammer" in response.content
    assert b'PHP front end on <a href="/hosts/sunjammer/">sunjammer</a>' in response.content
    assert b"Perlbal load balancer on beamrider" in response.content
    assert b"MySQL replica" not in response.content  # that is phase 3


# --- Hosts ------------------------------------------------------------------------------------


def test_the_host_list_shows_every_host_in_name_order(signed_in):
    response = signed_in.get("/hosts/")

    assert response.status_code == 200
    assert [h.name for h in response.context["hosts"]] == ["beamrider", "remora2", "sunjammer"]
    for name in ("beamrider", "remora2", "sunjammer"):
        assert f'<a href="/hosts/{name}/">{name}</a>'.encode() in response.content


def test_the_host_list_filtered_by_zone_shows_only_that_zones_hosts(signed_in):
    response = signed_in.get("/hosts/", {"zone": "beamrider"})

    assert response.status_code == 200
    assert [h.name for h in response.context["hosts"]] == ["beamrider", "remora2"]
    assert b'href="/hosts/beamrider/"' in response.content
    assert b'href="/hosts/remora2/"' in response.content
    assert b'href="/hosts/sunjammer/"' not in response.content
    assert b'<option value="beamrider" selected>' in response.content


def test_an_htmx_filter_returns_only_the_rows(signed_in):
    response = signed_in.get("/hosts/", {"zone": "sunjammer"}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b"<tr>" in response.content
    assert b'href="/hosts/sunjammer/"' in response.content
    assert b'href="/hosts/beamrider/"' not in response.content
    assert b'href="/hosts/remora2/"' not in response.content


def test_a_zone_without_hosts_says_so(signed_in):
    response = signed_in.get("/hosts/", {"zone": "nowhere"}, headers={"HX-Request": "true"})

    assert b"No hosts in zone nowhere." in response.content


def test_the_host_detail_shows_its_services_and_settings(signed_in):
    response = signed_in.get("/hosts/beamrider/")

    assert response.status_code == 200
    assert b"beamrider.sugarlabs.org" in response.content
    assert b"root@beamrider.sugarlabs.org -p 22" in response.content
    assert b"MySQL master" in response.content
    assert b"/srv/remora/files, /srv/remora/public-staging" in response.content
    assert b"Phase 1: Entire load on beamrider: PHP front end" in response.content


def test_a_planned_host_shows_what_the_plan_puts_on_it(signed_in):
    response = signed_in.get("/hosts/remora2/")

    assert response.status_code == 200
    assert b"No services run on remora2 yet; the growth phases below place some here" in (
        response.content
    )
    assert b"Phase 3: A second Remora machine: MySQL replica" in response.content
    # One sentence says what the shadow database is for.
    assert b"serves the application's reads, while every write goes to the master" in (
        response.content
    )


def test_an_unknown_host_is_a_friendly_404(signed_in):
    response = signed_in.get("/hosts/nosuchhost/")

    assert response.status_code == 404
    assert b"Nothing here" in response.content
    assert b"Back to the dashboard" in response.content
    assert b"Traceback" not in response.content
    assert b"URLconf" not in response.content


def test_an_unknown_page_is_a_friendly_404(signed_in):
    response = signed_in.get("/no/such/page/")

    assert response.status_code == 404
    assert b"Nothing here" in response.content
    assert b"Traceback" not in response.content


# --- Phases -----------------------------------------------------------------------------------


def test_the_phases_page_draws_three_topology_pictures(signed_in):
    response = signed_in.get("/phases/")

    assert response.status_code == 200
    assert response.content.count(b"<svg") == 3
    for number in (1, 2, 3):
        assert f'id="topo-title-{number}"'.encode() in response.content


def test_the_phases_page_says_what_each_phase_changes(signed_in):
    response = signed_in.get("/phases/")

    assert b"adds PHP front end on sunjammer" in response.content
    assert b"reconfigures Perlbal load balancer on beamrider" in response.content
    assert b"adds Heartbeat monitor on remora2" in response.content


# --- Audit ------------------------------------------------------------------------------------


def test_the_audit_page_lists_the_newest_events_first(signed_in):
    record("zone.updated", actor_name="bob", target_repr="sunjammer")

    response = signed_in.get("/audit/")

    assert response.status_code == 200
    sequences = [e.sequence for e in response.context["events"]]
    assert sequences == sorted(sequences, reverse=True)
    assert sequences[0] == AuditEvent.objects.count()
    assert b"<code>zone.updated</code>" in response.content
    assert b"<td>bob</td>" in response.content


def test_the_audit_page_pages_older_events_by_sequence(signed_in):
    for i in range(40):
        record("service.created", details={"i": i})
    total = AuditEvent.objects.count()
    assert total > 50

    first = signed_in.get("/audit/")
    first_page = [e.sequence for e in first.context["events"]]
    assert first_page == list(range(total, total - 50, -1))
    link = f'href="?before={total - 49}"'.encode()
    assert link in first.content
    assert b"Older events" in first.content

    older = signed_in.get("/audit/", {"before": total - 49})
    older_page = [e.sequence for e in older.context["events"]]
    assert older_page == list(range(total - 50, 0, -1))
    assert b"Older events" not in older.content


def test_the_older_events_link_loads_only_rows_for_htmx(signed_in):
    for _ in range(60):
        record("service.created")

    response = signed_in.get("/audit/", {"before": 10}, headers={"HX-Request": "true"})

    assert b"<html" not in response.content
    assert [e.sequence for e in response.context["events"]] == list(range(9, 0, -1))


# --- Content Security Policy ------------------------------------------------------------------


def test_every_page_sends_a_csp_without_unsafe_inline(signed_in):
    for url in ("/", "/hosts/", "/hosts/beamrider/", "/phases/", "/audit/"):
        response = signed_in.get(url)
        policy = response.headers.get("Content-Security-Policy", "")
        assert "script-src" in policy, url
        assert "unsafe-inline" not in policy, url
        assert "unsafe-eval" not in policy, url


def test_every_script_on_the_dashboard_carries_the_nonce_of_the_header(signed_in):
    response = signed_in.get("/")
    nonce = _header_nonce(response).encode()

    tags = SCRIPT_TAG.findall(response.content)
    assert tags
    for tag in tags:
        match = NONCE_ATTR.search(tag)
        assert match and match.group(1) == nonce, tag


def test_each_response_gets_a_fresh_nonce(signed_in):
    assert _header_nonce(signed_in.get("/")) != _header_nonce(signed_in.get("/"))


def test_the_sign_in_page_is_under_the_same_policy(client, db):
    response = client.get("/login/")
    nonce = _header_nonce(response).encode()

    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    for tag in SCRIPT_TAG.findall(response.content):
        assert NONCE_ATTR.search(tag).group(1) == nonce
