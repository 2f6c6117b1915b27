"""The launch page says at once, and once, why nothing can run on a host (no credential,
inactive, untrusted key), links to the fix for those the policy lets fix it, and disables the
launch buttons."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from hosts.models import Host
from jobs.models import JobRun
from remora_admin.audit.models import AuditEvent

pytestmark = pytest.mark.django_db
NO_CREDENTIAL = "lab1 has no SSH credential, so no run can sign in there"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _blockers(page: str) -> str:
    """The notice at the top of the page that lists what blocks the host."""
    found = re.search(r'<article[^>]*id="launch-blockers".*?</article>', page, re.S)
    return found.group(0) if found else ""


@pytest.fixture
def no_credential(lab_host):
    Host.objects.filter(pk=lab_host.pk).update(credential=None)
    return lab_host


def test_a_host_without_credential_is_said_at_once_and_once(no_credential, alice, carol):
    url = reverse("jobs:launch", args=[no_credential.name])

    for user in (alice, carol):
        page = _client(user).get(url).content.decode()
        assert page.count(NO_CREDENTIAL) == 1, user
        assert NO_CREDENTIAL in _blockers(page)


def test_the_fix_is_linked_for_a_zone_admin_and_not_for_an_operator(no_credential, alice, carol):
    url = reverse("jobs:launch", args=[no_credential.name])
    edit = reverse("hosts:edit", args=[no_credential.name])
    keys = reverse("hosts:credentials")

    admins = _blockers(_client(alice).get(url).content.decode())
    operators = _blockers(_client(carol).get(url).content.decode())

    assert f'href="{edit}"' in admins and f'href="{keys}"' in admins
    assert "href=" not in operators
    assert "a zone admin assigns one" in operators  # still told whom to ask


def test_the_launch_buttons_are_disabled_and_a_launch_is_refused_and_said_once(
    no_credential, carol
):
    url = reverse("jobs:launch", args=[no_credential.name]) + "?recipe=host_health"
    client = _client(carol)

    preview = client.post(url, {"recipe": "host_health", "preview": "1"}).content.decode()
    assert re.search(r'<button[^>]*name="launch"[^>]*disabled', preview)
    assert re.search(r'<button[^>]*name="dry_run"[^>]*disabled', preview)
    assert not re.search(r'<button[^>]*name="preview"[^>]*disabled', preview)

    forced = client.post(url, {"recipe": "host_health", "launch": "1"})  # the button bypassed
    assert forced.status_code == 200
    assert forced.content.decode().count(NO_CREDENTIAL) == 1
    assert not JobRun.objects.exists()
    refusal = AuditEvent.objects.get(action="run.refused")
    assert (
        refusal.target_id == str(no_credential.pk) and refusal.details["reason"] == "no_credential"
    )


def test_an_untrusted_key_and_an_inactive_host_name_their_own_fixes(lab_host, alice, carol):
    Host.objects.filter(pk=lab_host.pk).update(host_key="", host_key_fingerprint="", active=False)
    url = reverse("jobs:launch", args=[lab_host.name])

    admins = _blockers(_client(alice).get(url).content.decode())
    operators = _blockers(_client(carol).get(url).content.decode())

    assert "host key is not trusted yet" in admins and "is not active" in admins
    assert "Scan and trust its key" in admins and "Mark it active" in admins
    assert "host key is not trusted yet" in operators and "is not active" in operators
    assert "Scan and trust" not in operators and "Mark it active" not in operators


def test_a_ready_host_shows_no_notice_and_enabled_buttons(lab_host, carol):
    url = reverse("jobs:launch", args=[lab_host.name]) + "?recipe=host_health"

    page = _client(carol).post(url, {"recipe": "host_health", "preview": "1"}).content.decode()

    assert _blockers(page) == ""
    assert not re.search(r'<button[^>]*name="launch"[^>]*disabled', page)


def test_a_blocked_host_offered_alongside_is_shown_disabled_with_its_reason(
    sshd_host, lab_host, zone, credential, carol
):
    from .conftest import host_for

    other = host_for(sshd_host, zone, credential, name="lab2")
    Host.objects.filter(pk=other.pk).update(credential=None)
    url = reverse("jobs:launch", args=[lab_host.name]) + "?recipe=host_health"

    page = _client(carol).post(url, {"recipe": "host_health", "preview": "1"}).content.decode()

    assert re.search(r'value="lab2"[^>]*disabled', page)
    assert "lab2 has no SSH credential" in page
