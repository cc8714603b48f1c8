"""Helpdesk integrations behind one interface; `helpdesk_for` picks one per installation."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from plugin.helpdesks import demo, freshdesk, zendesk
from plugin.helpdesks.credentials import CredentialsVault
from plugin.helpdesks.http import AccountSessions
from plugin.helpdesks.interface import Helpdesk, HelpdeskError
from plugin.models import Installation


class UnsupportedPlatform(LookupError):
    pass


@dataclass(frozen=True)
class Connections:
    """What remote clients share across requests: the vault, pooled sessions, call budgets."""

    vault: CredentialsVault
    accounts: AccountSessions
    timeout: float


def helpdesk_for(
    installation: Installation, session: Session, *, connections: Connections
) -> Helpdesk:
    """Return the client for an installation's helpdesk."""
    if installation.platform == demo.PLATFORM:
        return demo.DemoHelpdesk(session, installation_id=installation.id)
    if installation.platform == zendesk.PLATFORM:
        if not installation.credentials_encrypted:
            raise HelpdeskError(
                "this installation has no API credentials yet; ask an admin to register them",
                retryable=False,
            )
        base_url = zendesk.base_url_for(installation.account, installation.api_base_url)
        return zendesk.ZendeskClient(
            session=connections.accounts.session(base_url),
            base_url=base_url,
            credentials=zendesk.ZendeskCredentials.from_dict(
                connections.vault.decrypt(installation.credentials_encrypted)
            ),
            budget=connections.accounts.budget(base_url),
            timeout=connections.timeout,
            groups=connections.accounts.groups(base_url),
        )
    if installation.platform == freshdesk.PLATFORM:
        if not installation.credentials_encrypted:
            raise HelpdeskError(
                "this installation has no API key yet; ask an admin to register it",
                retryable=False,
            )
        base_url = freshdesk.base_url_for(installation.account, installation.api_base_url)
        return freshdesk.FreshdeskClient(
            session=connections.accounts.session(base_url),
            base_url=base_url,
            credentials=freshdesk.FreshdeskCredentials.from_dict(
                connections.vault.decrypt(installation.credentials_encrypted)
            ),
            budget=connections.accounts.budget(
                base_url, calls_per_minute=freshdesk.DEFAULT_CALLS_PER_MINUTE
            ),
            timeout=connections.timeout,
            groups=connections.accounts.groups(base_url),
        )
    raise UnsupportedPlatform(f"no client for platform {installation.platform!r} yet")


def is_allowed_origin(installation: Installation, origin: str, *, service_origin: str) -> bool:
    """Say whether the page framing the app may be this installation's helpdesk."""
    if installation.platform == demo.PLATFORM:
        return origin == service_origin
    if installation.platform == zendesk.PLATFORM:
        return origin == f"https://{installation.account}.zendesk.com"
    # Freshdesk never frames the service: its app is a packaged page that calls the service
    # through Freshworks' request proxy, authenticated by the installation's secret instead.
    return False
