"""How the worker reaches a host: its address, its pinned key, the zone's credential."""

from hosts.credentials import decrypt

from . import ssh


def target_for(host, credential) -> ssh.Target:
    """Where and how to sign in to `host` (raises CredentialError if the key cannot be read)."""
    return ssh.Target(
        address=host.address,
        port=host.ssh_port,
        user=host.ssh_user,
        host_key=host.host_key,
        private_key=decrypt(credential.encrypted_private_key),
        key_type=credential.key_type,
    )
