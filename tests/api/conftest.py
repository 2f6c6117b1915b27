"""The access tests' cast (tests/access/conftest.py), and topology hosts a launch can reach:
each zone gets a real SSH credential and each host a pinned host key, its SSH pointed at a
closed local port (no test reaches the internet; no worker runs, so runs stay queued)."""

import socket

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from hosts.credentials import encrypt, fingerprint, parse_private_key
from hosts.models import Credential, Host
from tests.access.conftest import (  # noqa: F401 - fixtures, shared with the access tests
    alice,
    beamrider_host,
    bernie,
    bob,
    carol,
    cast,
    dan,
    erin,
    ivan,
    sunjammer_host,
    zed,
)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _key_pair() -> tuple[str, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return private, public


def make_launchable(host: Host) -> Host:
    """Give `host` what a launch needs (a credential of its zone, a trusted host key), its SSH
    pointed at a closed local port."""
    credential = Credential.objects.filter(zone=host.zone).first()
    if credential is None:
        private, kind, public = parse_private_key(_key_pair()[0])
        credential = Credential.objects.create(
            name=f"{host.zone.name}-key",
            zone=host.zone,
            key_type=kind,
            public_key=public,
            fingerprint=fingerprint(public),
            encrypted_private_key=encrypt(private),
        )
    host_key = _key_pair()[1]
    Host.objects.filter(pk=host.pk).update(
        address="127.0.0.1",
        ssh_port=closed_port(),
        credential=credential,
        host_key=host_key,
        host_key_fingerprint=fingerprint(host_key),
        host_key_alert="",
        active=True,
    )
    host.refresh_from_db()
    return host


@pytest.fixture
def launchable(topology):
    """beamrider and sunjammer, ready to launch on (runs stay queued: no worker runs)."""
    return {
        name: make_launchable(Host.objects.get(name=name)) for name in ("beamrider", "sunjammer")
    }
