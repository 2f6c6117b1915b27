"""SSH credentials: generated or imported, encrypted at rest, only the public half shown, and
re-encrypted by the rotation command."""

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

from hosts.credentials import CredentialError, decrypt, generate_ed25519, parse_private_key
from hosts.models import Credential, Host
from remora_admin.access.models import Grant, Role, Zone
from remora_admin.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def erin(topology):
    """Zone admin of sunjammer (a standard zone: no second factor needed to act)."""
    user = get_user_model().objects.create_user("erin")
    Grant.objects.create(
        user=user, role=Role.ZONE_ADMIN, zone=Zone.objects.get(name="sunjammer"), reason="t"
    )
    client = Client()
    client.force_login(user)
    return client


def test_a_generated_key_is_stored_encrypted_and_only_its_public_half_is_shown(erin):
    response = erin.post(
        reverse("hosts:credential_new"), {"name": "deploy", "zone": "sunjammer", "private_key": ""}
    )

    assert response.status_code == 302
    credential = Credential.objects.get(name="deploy")
    private = decrypt(credential.encrypted_private_key)
    assert "OPENSSH PRIVATE KEY" in private
    assert b"PRIVATE KEY" not in bytes(credential.encrypted_private_key)
    assert credential.key_type == "ssh-ed25519"
    assert credential.fingerprint.startswith("SHA256:")
    page = erin.get(reverse("hosts:credentials")).content.decode()
    assert credential.public_key in page and credential.fingerprint in page
    body_line = [line for line in private.splitlines() if len(line) > 40][0]
    assert body_line not in page
    event = AuditEvent.objects.get(action="credential.created")
    assert event.details == {
        "key_type": "ssh-ed25519",
        "fingerprint": credential.fingerprint,
        "generated": True,
    }


def test_an_imported_key_is_normalised_and_checked(erin):
    text = generate_ed25519()

    erin.post(
        reverse("hosts:credential_new"),
        {"name": "imported", "zone": "sunjammer", "private_key": text},
    )

    credential = Credential.objects.get(name="imported")
    assert parse_private_key(decrypt(credential.encrypted_private_key))[2] == credential.public_key


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not a key at all", "not an unencrypted SSH private key"),
        (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            .private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            )
            .decode(),
            "at least 3072 bits",
        ),
    ],
)
def test_bad_or_weak_keys_are_refused_in_words_and_nothing_is_stored(erin, text, message):
    response = erin.post(
        reverse("hosts:credential_new"), {"name": "bad", "zone": "sunjammer", "private_key": text}
    )

    assert message in response.context["form"].errors["private_key"][0]
    assert not Credential.objects.exists()
    with pytest.raises(CredentialError):
        parse_private_key(text)


def test_a_zone_admin_cannot_add_a_credential_to_another_zone(erin):
    response = erin.post(
        reverse("hosts:credential_new"), {"name": "sneaky", "zone": "beamrider", "private_key": ""}
    )

    assert "Select a valid choice" in response.context["form"].errors["zone"][0]
    assert not Credential.objects.exists()


def test_rotation_re_encrypts_every_key_with_the_newest_key(erin, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.REMORA_CREDENTIALS_KEYS = [old]
    erin.post(
        reverse("hosts:credential_new"), {"name": "k", "zone": "sunjammer", "private_key": ""}
    )
    credential = Credential.objects.get()
    private = decrypt(credential.encrypted_private_key)

    with override_settings(REMORA_CREDENTIALS_KEYS=[new, old]):
        call_command("rotate_credentials_key", stdout=StringIO())
    credential.refresh_from_db()

    with override_settings(REMORA_CREDENTIALS_KEYS=[new]):
        assert decrypt(credential.encrypted_private_key) == private
    with override_settings(REMORA_CREDENTIALS_KEYS=[old]), pytest.raises(CredentialError):
        decrypt(credential.encrypted_private_key)
    assert AuditEvent.objects.filter(action="credential.keys_rotated").exists()


def test_editing_a_host_is_audited_with_before_and_after(erin):
    host = Host.objects.get(name="sunjammer")

    erin.post(
        reverse("hosts:edit", args=["sunjammer"]),
        {
            "address": "10.1.2.3",
            "ssh_port": "2222",
            "ssh_user": "deploy",
            "credential": "",
            "description": host.description,
            "active": "on",
        },
    )

    host.refresh_from_db()
    assert (host.address, host.ssh_port, host.ssh_user) == ("10.1.2.3", 2222, "deploy")
    event = AuditEvent.objects.filter(action="host.updated").first()
    assert event.details["before"]["ssh_port"] == 22
    assert event.details["after"]["ssh_port"] == 2222


def test_a_bad_host_edit_changes_nothing(erin):
    response = erin.post(
        reverse("hosts:edit", args=["sunjammer"]),
        {"address": "not a host!", "ssh_port": "70000", "ssh_user": "Root Name", "active": "on"},
    )

    errors = response.context["form"].errors
    assert set(errors) == {"address", "ssh_port", "ssh_user"}
    assert Host.objects.get(name="sunjammer").ssh_port == 22
    assert not AuditEvent.objects.filter(action="host.updated").exists()
