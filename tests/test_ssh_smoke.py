"""The sshd fixture is a real OpenSSH server that pins and checks host keys like a real host."""

from __future__ import annotations

import base64

import paramiko
import pytest

from tests.fixtures.sshd import SshdHost


def _host_key(public_key: str) -> paramiko.PKey:
    key_type, key_b64 = public_key.split()[:2]
    return paramiko.PKey.from_type_string(key_type, base64.b64decode(key_b64))


def _client(host: SshdHost, pinned: str | None) -> paramiko.SSHClient:
    """An SSHClient that trusts only `pinned` (an OpenSSH public key) for `host`."""
    client = paramiko.SSHClient()
    if pinned is not None:
        client.get_host_keys().add(host.known_hosts_name, pinned.split()[0], _host_key(pinned))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return client


def _connect(client: paramiko.SSHClient, host: SshdHost) -> None:
    client.connect(
        host.address,
        port=host.port,
        username=host.user,
        pkey=paramiko.Ed25519Key.from_private_key_file(str(host.client_key_path)),
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )


def test_runs_a_command_on_a_pinned_host(sshd_host: SshdHost) -> None:
    assert sshd_host.address == "127.0.0.2"
    client = _client(sshd_host, sshd_host.host_public_key)
    try:
        _connect(client, sshd_host)
        _stdin, stdout, _stderr = client.exec_command("echo hello-remora; exit 3", timeout=10)
        output = stdout.read().decode()
        status = stdout.channel.recv_exit_status()
    finally:
        client.close()
    assert output == "hello-remora\n"
    assert status == 3


def test_unknown_host_key_is_refused(sshd_host: SshdHost) -> None:
    client = _client(sshd_host, pinned=None)
    try:
        with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
            _connect(client, sshd_host)
    finally:
        client.close()


def test_other_pinned_host_key_is_refused(sshd_host: SshdHost, make_sshd) -> None:
    impostor = make_sshd()  # same client key accepted, but its own host key
    assert impostor.host_public_key != sshd_host.host_public_key
    client = _client(impostor, pinned=sshd_host.host_public_key)
    try:
        with pytest.raises(paramiko.BadHostKeyException):
            _connect(client, impostor)
    finally:
        client.close()
