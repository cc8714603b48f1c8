"""Helpdesk credentials encrypted at rest, with keys that can be rotated.

The vault holds one or more Fernet keys (AES-128-CBC with an HMAC-SHA256, from `cryptography`).
The first key encrypts; every key decrypts. To rotate: put a new key first, keep the old ones
after it, restart, run `flask installations rotate-encryption-key` to re-encrypt every stored
credential with the new key, then drop the old keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

EXTENSION_KEY = "regulars.vault"


class CredentialsError(Exception):
    """Stored credentials could not be read; the message never carries a secret."""


def generate_key() -> str:
    """Return a new random Fernet key."""
    return Fernet.generate_key().decode("ascii")


def is_valid_key(key: str) -> bool:
    """Say whether `key` is a Fernet key: 32 bytes in URL-safe base64."""
    try:
        Fernet(key)
    except ValueError:  # binascii.Error, for bad base64, is a ValueError too
        return False
    return True


class CredentialsVault:
    """Encrypt credentials with the first key; decrypt with any of them."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("the credentials vault needs at least one key")
        for position, key in enumerate(keys, start=1):
            if not is_valid_key(key):
                # The position, never the key: messages end up in logs and terminals.
                raise ValueError(f"encryption key {position} of {len(keys)} is not a Fernet key")
        self._fernet = MultiFernet([Fernet(key) for key in keys])
        self.key_count = len(keys)

    def __repr__(self) -> str:
        return f"<CredentialsVault with {self.key_count} key(s)>"

    def encrypt(self, payload: Mapping[str, str]) -> str:
        """Encrypt a set of named secrets with the first key; returns a URL-safe token."""
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in payload.items()):
            raise TypeError("credentials must map names to strings")
        plaintext = json.dumps(dict(payload), sort_keys=True).encode()
        return self._fernet.encrypt(plaintext).decode("ascii")

    def decrypt(self, token: str) -> dict[str, str]:
        """Decrypt a token made by `encrypt` with any of the vault's keys."""
        try:
            plaintext = self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise CredentialsError(_UNREADABLE) from None
        return _payload(plaintext)

    def rotate(self, token: str) -> str:
        """Re-encrypt a token with the first key, whichever key encrypted it."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError):
            raise CredentialsError(_UNREADABLE) from None


_UNREADABLE = (
    "stored credentials cannot be decrypted with the configured encryption keys: "
    "REGULARS_ENCRYPTION_KEYS (or instance/encryption_key) must still hold the key they were "
    "encrypted with; otherwise register the installation's credentials again"
)


def _payload(plaintext: bytes) -> dict[str, str]:
    try:
        value = json.loads(plaintext)
    except ValueError:
        raise CredentialsError("stored credentials decrypt to something unreadable") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise CredentialsError("stored credentials decrypt to something unreadable")
    return value
