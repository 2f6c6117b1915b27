"""SSH private keys, encrypted at rest with a key of their own (REMORA_CREDENTIALS_KEY).

The key is separate from SECRET_KEY so that rotating one does not touch the other. Private keys
are decrypted only in the job worker, just before connecting, and never rendered back.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CredentialError(Exception):
    pass


def _fernet(keys: list[str] | None = None) -> MultiFernet:
    keys = keys if keys is not None else settings.REMORA_CREDENTIALS_KEYS
    if not keys:
        raise ImproperlyConfigured(
            "REMORA_CREDENTIALS_KEY is not set: SSH keys cannot be stored or used. Generate one "
            "with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'"
        )
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "REMORA_CREDENTIALS_KEY must be a Fernet key (32 url-safe base64-encoded bytes)."
        ) from None


def encrypt(private_key_text: str) -> bytes:
    return _fernet().encrypt(private_key_text.encode())


def decrypt(token: bytes) -> str:
    try:
        return _fernet().decrypt(bytes(token)).decode()
    except InvalidToken:
        raise CredentialError(
            "The stored key cannot be decrypted with REMORA_CREDENTIALS_KEY (wrong or rotated key)."
        ) from None


def rotate(token: bytes) -> bytes:
    """Re-encrypt with the first (newest) key; older keys in the list can still decrypt."""
    return _fernet().rotate(bytes(token))


def generate_ed25519() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()


def parse_private_key(text: str) -> tuple[str, str, str]:
    """Validate a pasted private key. Returns (normalised private text, key type, public line)."""
    data = text.strip().encode() + b"\n"
    try:
        key = serialization.load_ssh_private_key(data, password=None)
    except ValueError:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise CredentialError(
                "This is not an unencrypted SSH private key (OpenSSH or PEM format)."
            ) from exc
    except TypeError:
        raise CredentialError(
            "Passphrase-protected keys are not supported; remove it first."
        ) from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        kind = "ssh-ed25519"
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        kind = f"ecdsa-sha2-nistp{key.curve.key_size}"
    elif isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 3072:
            raise CredentialError("RSA keys must have at least 3072 bits; prefer Ed25519.")
        kind = "rsa-sha2-512"
    else:
        raise CredentialError("Only Ed25519, ECDSA and RSA keys are supported.")
    normalised = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return normalised, kind, public


def fingerprint(public_line: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key line ("type base64 [comment]")."""
    try:
        blob = base64.b64decode(public_line.split()[1], validate=True)
    except (IndexError, ValueError):
        raise CredentialError("This is not an OpenSSH public key line.") from None
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
