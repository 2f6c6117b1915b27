"""Hosts in the inventory that point at the real sshd fixtures, with a real credential."""

import pytest
from django.contrib.auth import get_user_model

from hosts.credentials import encrypt, fingerprint, parse_private_key
from hosts.models import Credential, Host
from remora_admin.access.models import Grant, Role, Zone


@pytest.fixture
def zone(db):
    return Zone.objects.create(name="lab", sensitivity=Zone.Sensitivity.STANDARD)


@pytest.fixture
def credential(zone, ssh_keys):
    private, kind, public = parse_private_key(ssh_keys.client_key_path.read_text())
    return Credential.objects.create(
        name="lab-key",
        zone=zone,
        key_type=kind,
        public_key=public,
        fingerprint=fingerprint(public),
        encrypted_private_key=encrypt(private),
    )


def host_for(sshd, zone, credential, name="lab1") -> Host:
    return Host.objects.create(
        name=name,
        address=sshd.address,
        ssh_port=sshd.port,
        ssh_user=sshd.user,
        zone=zone,
        credential=credential,
        host_key=sshd.host_public_key,
        host_key_fingerprint=fingerprint(sshd.host_public_key),
    )


@pytest.fixture
def lab_host(sshd_host, zone, credential):
    return host_for(sshd_host, zone, credential)


@pytest.fixture
def alice(zone):
    """A zone admin of the lab zone."""
    user = get_user_model().objects.create_user("alice", password="alice-pass-1")
    Grant.objects.create(user=user, role=Role.ZONE_ADMIN, zone=zone, reason="test")
    return user


@pytest.fixture
def carol(zone):
    """An operator of the lab zone."""
    user = get_user_model().objects.create_user("carol", password="carol-pass-1")
    Grant.objects.create(user=user, role=Role.OPERATOR, zone=zone, reason="test")
    return user
