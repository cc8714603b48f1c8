"""Tokens a company's own systems push customer data with: one per installation, stored hashed."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.models import Installation

PREFIX = "rgp_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(installation: Installation) -> str:
    """Give the installation a new token and return it; only its hash is kept."""
    token = PREFIX + secrets.token_urlsafe(32)
    installation.push_token_hash = _digest(token)
    return token


def installation_for(session: Session, token: str) -> Installation | None:
    """Return the installation a pushed token belongs to, or None."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    digest = _digest(token)
    installation = session.scalars(
        sa.select(Installation).where(Installation.push_token_hash == digest)
    ).first()
    # The lookup is by hash, so timing says nothing about the token; compare again anyway so
    # a hash collision in the index could not let a different token in.
    if installation is None or not hmac.compare_digest(installation.push_token_hash or "", digest):
        return None
    return installation
