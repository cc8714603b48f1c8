"""The demo installation's RSA key, made on first run: it signs launch tokens as Zendesk does."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_FILE = "demo_app_key.pem"
TOKEN_LIFETIME = timedelta(minutes=5)


def load_or_create_private_key(instance_path: Path) -> rsa.RSAPrivateKey:
    """Return the demo's private key, creating it (readable by the owner only) on first use."""
    path = instance_path / KEY_FILE
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    instance_path.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key


def public_key_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def sign_launch_token(
    key: rsa.RSAPrivateKey, *, audience: str, issuer: str, user_id: str, now: datetime
) -> str:
    """Sign a launch token with the claims the service checks; `now` is naive UTC."""
    issued = now.replace(tzinfo=UTC)
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": user_id,
        "iat": issued,
        "exp": issued + TOKEN_LIFETIME,
        "jti": secrets.token_hex(16),
    }
    return jwt.encode(claims, key, algorithm="RS256")
