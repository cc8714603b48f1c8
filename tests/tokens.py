"""Helpers that make launch tokens the way Zendesk does, and the ways an attacker would."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def claims(audience: str, *, issued: datetime | None = None, lifetime: int = 300) -> dict[str, Any]:
    issued = issued or datetime.now(UTC)
    return {
        # The account's host, as the installation's audience names it.
        "iss": urlsplit(audience).hostname or "acme.zendesk.com",
        "aud": audience,
        "sub": "80001",
        "iat": issued,
        "exp": issued + timedelta(seconds=lifetime),
    }


def rs256(key: rsa.RSAPrivateKey, payload: dict[str, Any]) -> str:
    return jwt.encode(payload, key, algorithm="RS256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_claims(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in payload.items()}


def unsigned(payload: dict[str, Any]) -> str:
    """A token with alg "none" and no signature."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = _b64(json.dumps(_json_claims(payload)).encode())
    return f"{header}.{body}."


def hs256_with_public_key(key: rsa.RSAPrivateKey, payload: dict[str, Any]) -> str:
    """The algorithm-confusion attack: HMAC-signed with the (public) RSA key as the secret."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(_json_claims(payload)).encode())
    signing_input = f"{header}.{body}".encode()
    signature = hmac.new(public_pem(key).encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def tampered(token: str, **changes: Any) -> str:
    """Change claims in a signed token but keep its signature."""
    header, body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    return f"{header}.{_b64(json.dumps(payload).encode())}.{signature}"
