"""What every platform's installation shares: finding one by name, the registration values
every platform checks, re-encrypting stored credentials, and the connection check's report.

Each platform registers and checks its own (`zendesk_installations`, `zendesk_connection_check`,
`freshdesk_installations`, and Shopify's in `plugin/customers`). No Flask here: callers pass
the database session and the credentials vault, and commit when they are done.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.helpdesks.credentials import CredentialsError, CredentialsVault
from plugin.models import Installation

MAX_DISPLAY_NAME = 255
MAX_API_BASE_URL = 500


class RegistrationError(ValueError):
    """A registration value is unusable; the message names the field and never a secret."""


def installation_named(session: Session, name: str) -> Installation:
    """Find an installation by account (`acme`) or platform and account (`zendesk:acme`)."""
    platform, _, account = name.rpartition(":")
    query = sa.select(Installation).where(Installation.account == account)
    if platform:
        query = query.where(Installation.platform == platform)
    found = session.scalars(query).all()
    if not found:
        raise RegistrationError(f"no installation is named {name!r}")
    if len(found) > 1:
        options = ", ".join(f"{i.platform}:{i.account}" for i in found)
        raise RegistrationError(f"{name!r} names several installations; say which: {options}")
    return found[0]


def reencrypt_credentials(session: Session, vault: CredentialsVault) -> int:
    """Re-encrypt every installation's credentials with the vault's first key; return how many.

    All or nothing: one that cannot be decrypted stops the run before the caller commits.
    """
    installations = session.scalars(
        sa.select(Installation)
        .where(Installation.credentials_encrypted.is_not(None))
        .order_by(Installation.id)
    )
    count = 0
    for installation in installations:
        assert installation.credentials_encrypted is not None  # as selected
        try:
            installation.credentials_encrypted = vault.rotate(installation.credentials_encrypted)
        except CredentialsError as error:
            raise CredentialsError(
                f"installation {installation.platform}:{installation.account}: {error}"
            ) from None
        count += 1
    session.flush()
    return count


def validate_api_base_url(value: str, *, example: str) -> str:
    """Check an API base URL override (for a local fake or a proxy); return it tidied."""
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if (
        parts.scheme not in {"https", "http"}
        or not parts.hostname
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
        or len(url) > MAX_API_BASE_URL
    ):
        raise RegistrationError(
            "api_base_url must be an http(s) URL with a host and no query, user or password, "
            f"such as {example}"
        )
    return url


def validate_display_name(value: str) -> str:
    """Check the name an installation is shown by; return it trimmed."""
    name = value.strip()
    if not name or len(name) > MAX_DISPLAY_NAME:
        raise RegistrationError(f"display_name must be 1 to {MAX_DISPLAY_NAME} characters")
    return name


class CheckStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    """One step of the connection check and what came of it, in words an admin can act on."""

    name: str
    status: CheckStatus
    message: str


@dataclass(frozen=True)
class ConnectionReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(check.status is CheckStatus.OK for check in self.checks)
