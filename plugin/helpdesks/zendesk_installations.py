"""Zendesk installations: registering them, their stored credentials, and the app's public key
that their launch tokens are verified with.

No Flask here: callers pass the database session, the credentials vault and the HTTP session,
and commit when they are done.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.helpdesks import zendesk
from plugin.helpdesks.credentials import CredentialsError, CredentialsVault
from plugin.helpdesks.installations import (
    RegistrationError,
    validate_api_base_url,
    validate_display_name,
)
from plugin.helpdesks.zendesk import ZendeskCredentials
from plugin.models import Installation

logger = logging.getLogger(__name__)

_NUMERIC_ID = re.compile(r"[0-9]{1,64}")


# --- Registering -----------------------------------------------------------------------------


def register_zendesk(
    session: Session,
    vault: CredentialsVault,
    *,
    subdomain: str,
    app_id: str,
    credentials: ZendeskCredentials,
    app_installation_id: str | None = None,
    api_base_url: str | None = None,
    display_name: str | None = None,
) -> Installation:
    """Create the account's installation, or update it if the subdomain is registered already.

    The credentials are stored encrypted. Without `app_installation_id` an update keeps the one
    known for the same app; `check_connection` discovers it otherwise.
    """
    account = _subdomain(subdomain)
    app = _numeric_id("app_id", app_id)
    installation_id = (
        None
        if app_installation_id is None
        else _numeric_id("app_installation_id", app_installation_id)
    )
    base_url = (
        None
        if api_base_url is None
        else validate_api_base_url(api_base_url, example="https://acme.zendesk.com")
    )
    name = None if display_name is None else validate_display_name(display_name)

    installation = zendesk_installation(session, account)
    if installation is None:
        installation = Installation(platform=zendesk.PLATFORM, account=account)
        session.add(installation)
        logger.info("registering Zendesk installation %s", account)
    else:
        logger.info("updating Zendesk installation %s", account)
        if installation.app_id != app:
            # Another app: its installation and signing key are not this one's.
            installation.app_installation_id = None
            installation.token_audience = None
            installation.public_key_pem = None
            installation.public_key_fetched_at = None
    installation.app_id = app
    installation.api_base_url = base_url
    installation.display_name = name or installation.display_name or account
    if installation_id is not None:
        set_app_installation(installation, installation_id)
    installation.credentials_encrypted = vault.encrypt(credentials.to_dict())
    session.flush()
    return installation


def zendesk_installation(session: Session, subdomain: str) -> Installation | None:
    """Return the installation registered for a Zendesk subdomain, if any."""
    return session.scalars(
        sa.select(Installation).where(
            Installation.platform == zendesk.PLATFORM,
            Installation.account == subdomain.strip().lower(),
        )
    ).first()


def zendesk_installations(session: Session) -> list[Installation]:
    """Return every Zendesk installation, by subdomain."""
    return list(
        session.scalars(
            sa.select(Installation)
            .where(Installation.platform == zendesk.PLATFORM)
            .order_by(Installation.account)
        )
    )


def token_audience(subdomain: str, app_installation_id: str) -> str:
    """Return the audience Zendesk puts in the installation's launch tokens."""
    return f"https://{subdomain}.zendesk.com/api/v2/apps/installations/{app_installation_id}.json"


def zendesk_credentials(installation: Installation, vault: CredentialsVault) -> ZendeskCredentials:
    """Decrypt the installation's stored Zendesk credentials."""
    if not installation.credentials_encrypted:
        raise CredentialsError(
            f"installation {installation.account} has no stored credentials; "
            "register them with `flask zendesk register`"
        )
    try:
        return ZendeskCredentials.from_dict(vault.decrypt(installation.credentials_encrypted))
    except ValueError as error:  # from_dict names the bad fields, never their values
        raise CredentialsError(
            f"the stored credentials of installation {installation.account} are not Zendesk "
            f"credentials: {error}"
        ) from None


def set_app_installation(installation: Installation, app_installation_id: str) -> None:
    """Record which installation of the app this is, and so the audience of its launch tokens."""
    installation.app_installation_id = app_installation_id
    installation.token_audience = token_audience(installation.account, app_installation_id)


def _subdomain(value: str) -> str:
    subdomain = value.strip().lower()
    if not zendesk.valid_subdomain(subdomain):
        raise RegistrationError(
            "subdomain must be the account's name in its Zendesk address (acme for "
            "acme.zendesk.com): lowercase letters, digits and hyphens, up to 63 characters"
        )
    return subdomain


def _numeric_id(field: str, value: str) -> str:
    stripped = value.strip()
    if not _NUMERIC_ID.fullmatch(stripped):
        raise RegistrationError(f"{field} must be Zendesk's numeric id, such as 123456")
    return stripped


# --- The public key --------------------------------------------------------------------------


def refresh_public_key(
    session: Session,
    installation: Installation,
    *,
    http_session: requests.Session,
    timeout: float,
    now: datetime,
) -> bool:
    """Fetch the app's public key from Zendesk and store it; return whether it changed.

    Raises HelpdeskError (with `retryable`) when Zendesk does not give a usable key.
    """
    if not installation.app_id:
        raise RegistrationError(
            f"installation {installation.account} has no app_id; register it with --app-id"
        )
    pem = zendesk.fetch_public_key(
        http_session,
        zendesk.base_url_for(installation.account, installation.api_base_url),
        installation.app_id,
        timeout=timeout,
    )
    previous = installation.public_key_pem
    installation.public_key_pem = pem
    installation.public_key_fetched_at = now
    session.flush()
    if previous is not None and previous != pem:
        logger.warning("Zendesk installation %s has a new public key", installation.account)
    return pem != previous
