"""Scanning a host's key connects to whatever address the host has, so it could probe ports:
every scan is audited (failed ones with the address, port and error) and each person may scan
only so often."""

import socket
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from hosts.models import Host
from jobs import views_keys
from remora_admin.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def closed_host(lab_host):
    """The host's SSH pointed at a closed local port: a scan fails at once."""
    Host.objects.filter(pk=lab_host.pk).update(address="127.0.0.1", ssh_port=_closed_port())
    lab_host.refresh_from_db()
    return lab_host


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _scan(client, host):
    response = client.post(reverse("jobs:scan_key", args=[host.name]))
    return response, [str(m) for m in get_messages(response.wsgi_request)]


def test_a_failed_scan_is_audited_with_the_address_port_and_error(closed_host, alice):
    response, said = _scan(_client(alice), closed_host)

    assert response.status_code == 302
    assert said and said[0].startswith("Scan failed: unreachable")
    event = AuditEvent.objects.get(action="host.host_key_scan_failed")
    assert (event.actor_name, event.target_id, event.zone) == ("alice", str(closed_host.pk), "lab")
    assert event.details["address"] == "127.0.0.1"
    assert event.details["port"] == closed_host.ssh_port
    assert event.details["error"].startswith("unreachable")
    assert event.details["kind"] == "unreachable"


def test_a_successful_scan_records_where_it_connected(sshd_host, lab_host, alice):
    _scan(_client(alice), lab_host)

    event = AuditEvent.objects.get(action="host.host_key_scanned")
    assert (event.details["address"], event.details["port"]) == (sshd_host.address, sshd_host.port)


def test_scans_are_limited_per_person_and_the_refusal_says_when_to_try_again(
    closed_host, alice, zone
):
    from django.contrib.auth import get_user_model

    from remora_admin.access.models import Grant, Role

    client = _client(alice)
    for _ in range(views_keys.SCAN_LIMIT):
        _scan(client, closed_host)
    assert AuditEvent.objects.filter(action="host.host_key_scan_failed").count() == 10

    response, said = _scan(client, closed_host)

    assert response.status_code == 302
    assert "try again in" in said[-1] and "10 times in the last 10 minutes" in said[-1]
    refused = AuditEvent.objects.get(action="host.host_key_scan_refused")
    assert refused.actor_name == "alice" and refused.target_id == str(closed_host.pk)
    assert refused.details["reason"] == "rate_limited"
    assert 0 < refused.details["retry_after_seconds"] <= 600
    assert AuditEvent.objects.filter(action="host.host_key_scan_failed").count() == 10

    # The limit is per person: another zone admin still scans.
    dora = get_user_model().objects.create_user("dora")
    Grant.objects.create(user=dora, role=Role.ZONE_ADMIN, zone=zone, reason="test")
    _scan(_client(dora), closed_host)
    assert AuditEvent.objects.filter(action="host.host_key_scan_failed").count() == 11


def test_the_limit_counts_only_the_last_ten_minutes(closed_host, alice, monkeypatch):
    client = _client(alice)
    for _ in range(views_keys.SCAN_LIMIT):
        _scan(client, closed_host)
    assert views_keys.scan_wait(alice) is not None

    later = views_keys.timezone.now() + views_keys.SCAN_WINDOW + timedelta(seconds=1)
    monkeypatch.setattr(views_keys.timezone, "now", lambda: later)

    assert views_keys.scan_wait(alice) is None
