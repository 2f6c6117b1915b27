"""A host's service address (DESIGN.md, "Hosts have two addresses"): where the other hosts reach
it, next to the SSH address where the console connects. Blank means the same as the SSH address;
a zone admin edits it on the host form, audited with before and after; a bad value is refused in
words and changes nothing; the host page shows both."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from hosts.forms import HostForm
from hosts.models import Host
from remora_admin.audit.models import AuditEvent
from tests.access import conftest as access
from tests.access.helpers import events, sign_in

# The access tests' cast (tests/access/conftest.py), as fixtures of this module.
alice, bernie, bob, carol, erin = access.alice, access.bernie, access.bob, access.carol, access.erin

pytestmark = pytest.mark.django_db

VALIDATOR_WORDS = "Enter a host name (e.g. beamrider.sugarlabs.org) or an IP address."


def _form_data(host: Host, **changes) -> dict:
    """The host form as the edit page would post it back unchanged, with `changes` applied."""
    data = {
        "address": host.address,
        "service_address": host.service_address,
        "ssh_port": str(host.ssh_port),
        "ssh_user": host.ssh_user,
        "credential": host.credential_id or "",
        "description": host.description,
    }
    if host.active:
        data["active"] = "on"
    data.update(changes)
    return data


# --- The model ---------------------------------------------------------------------------------


def test_a_blank_service_address_defaults_to_the_ssh_address(topology):
    host = Host.objects.get(name="beamrider")

    assert host.service_address == ""
    assert host.reach_address == host.address == "beamrider.sugarlabs.org"


def test_a_set_service_address_is_where_other_hosts_reach_it(topology):
    host = Host.objects.get(name="beamrider")
    host.address = "127.0.77.2"
    host.service_address = "10.77.0.2"
    host.full_clean()
    host.save()

    host.refresh_from_db()
    assert host.reach_address == "10.77.0.2"
    assert host.address == "127.0.77.2"


@pytest.mark.parametrize("bad", ["not a host!", "10.0.0.1; rm -rf /", "a" * 254])
def test_the_model_refuses_a_bad_service_address(topology, bad):
    host = Host.objects.get(name="beamrider")
    host.service_address = bad

    with pytest.raises(ValidationError) as refused:
        host.full_clean()
    assert "service_address" in refused.value.message_dict


def test_the_form_puts_the_service_address_after_the_ssh_address(topology):
    form = HostForm(instance=Host.objects.get(name="sunjammer"))

    names = list(form.fields)
    assert names.index("service_address") == names.index("address") + 1
    assert form.fields["address"].label == "SSH address"
    assert form.fields["service_address"].label == "Service address"
    assert form.fields["service_address"].required is False


# --- Editing through the form ------------------------------------------------------------------


def test_a_zone_admin_edits_the_service_address_and_it_is_audited(erin):
    host = Host.objects.get(name="sunjammer")
    client = sign_in(erin)
    page = client.get(reverse("hosts:edit", args=["sunjammer"])).content.decode()
    assert "SSH address" in page and "Service address" in page

    response = client.post(
        reverse("hosts:edit", args=["sunjammer"]), _form_data(host, service_address="10.77.0.3")
    )

    assert response.status_code == 302
    host.refresh_from_db()
    assert host.service_address == "10.77.0.3"
    assert host.address == "sunjammer.sugarlabs.org"
    (event,) = events("host.updated", target_id=str(host.pk))
    assert event.actor == erin
    assert event.zone == "sunjammer"
    assert event.details == {
        "before": {"service_address": ""},
        "after": {"service_address": "10.77.0.3"},
    }


def test_a_restricted_zone_admin_edits_the_service_address_when_verified(alice):
    host = Host.objects.get(name="beamrider")
    client = sign_in(alice, verified=True, sudo=True)

    response = client.post(
        reverse("hosts:edit", args=["beamrider"]),
        _form_data(host, address="127.0.77.2", service_address="10.77.0.2"),
    )

    assert response.status_code == 302
    host.refresh_from_db()
    assert (host.address, host.service_address) == ("127.0.77.2", "10.77.0.2")
    assert host.reach_address == "10.77.0.2"
    (event,) = events("host.updated", target_id=str(host.pk))
    assert event.actor == alice
    assert event.details["before"] == {
        "address": "beamrider.sugarlabs.org",
        "service_address": "",
    }
    assert event.details["after"] == {"address": "127.0.77.2", "service_address": "10.77.0.2"}


def test_clearing_the_service_address_goes_back_to_the_ssh_address(erin):
    host = Host.objects.get(name="sunjammer")
    host.service_address = "10.77.0.3"
    host.save()
    client = sign_in(erin)

    response = client.post(
        reverse("hosts:edit", args=["sunjammer"]), _form_data(host, service_address="")
    )

    assert response.status_code == 302
    host.refresh_from_db()
    assert host.service_address == ""
    assert host.reach_address == "sunjammer.sugarlabs.org"
    (event,) = events("host.updated", target_id=str(host.pk))
    assert event.details == {
        "before": {"service_address": "10.77.0.3"},
        "after": {"service_address": ""},
    }


@pytest.mark.parametrize("bad", ["not a host!", "10.0.0.1; rm -rf /"])
def test_a_bad_service_address_is_refused_in_words_and_changes_nothing(erin, bad):
    host = Host.objects.get(name="sunjammer")
    client = sign_in(erin)
    before = AuditEvent.objects.count()

    response = client.post(
        reverse("hosts:edit", args=["sunjammer"]),
        # A good change to another field alongside: it must not be saved either.
        _form_data(host, service_address=bad, ssh_port="2222"),
    )

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert set(errors) == {"service_address"}
    assert errors["service_address"] == [VALIDATOR_WORDS]
    page = response.content.decode()
    assert "Enter a host name (e.g. beamrider.sugarlabs.org) or an IP address." in page
    host.refresh_from_db()
    assert (host.service_address, host.ssh_port) == ("", 22)
    assert not events("host.updated")
    assert AuditEvent.objects.count() == before


def test_an_operator_cannot_edit_the_service_address(carol, bob):
    for user, name, verified in ((carol, "sunjammer", False), (bob, "beamrider", True)):
        host = Host.objects.get(name=name)
        client = sign_in(user, verified=verified, sudo=True)

        assert client.get(reverse("hosts:edit", args=[name])).status_code == 403
        response = client.post(
            reverse("hosts:edit", args=[name]), _form_data(host, service_address="10.77.0.9")
        )

        assert response.status_code == 403
        host.refresh_from_db()
        assert host.service_address == ""
    assert not events("host.updated")


# --- The host page -----------------------------------------------------------------------------


def test_the_host_page_shows_both_addresses(alice):
    host = Host.objects.get(name="beamrider")
    host.address = "127.0.77.2"
    host.service_address = "10.77.0.2"
    host.save()

    response = sign_in(alice, verified=True).get(reverse("hosts:detail", args=["beamrider"]))

    assert response.status_code == 200
    page = response.content.decode()
    assert (
        "Other hosts reach it at <code>10.77.0.2</code>; "
        "the console connects over SSH to <code>127.0.77.2</code>." in page
    )
    assert "<dt>SSH address</dt><dd><code>127.0.77.2</code></dd>" in page
    assert "<dt>Service address</dt><dd><code>10.77.0.2</code></dd>" in page
    assert "defaults to the SSH address" not in page


def test_the_host_page_says_a_blank_service_address_defaults_to_the_ssh_address(erin):
    response = sign_in(erin).get(reverse("hosts:detail", args=["sunjammer"]))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Other hosts reach it at <code>sunjammer.sugarlabs.org</code>" in page
    assert "the console connects over SSH to <code>sunjammer.sugarlabs.org</code>." in page
    assert "not set: defaults to the SSH address" in page


def test_the_host_list_shows_where_others_reach_a_host_and_where_the_console_connects(alice):
    host = Host.objects.get(name="beamrider")
    host.address, host.ssh_port, host.ssh_user = "127.0.77.2", 22, "deploy"
    host.service_address = "10.77.0.2"
    host.save()

    page = sign_in(alice, verified=True).get(reverse("hosts:list")).content.decode()

    assert "<td><code>10.77.0.2</code></td>" in page
    assert "<code>deploy@127.0.77.2:22</code>" in page
