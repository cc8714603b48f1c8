"""Setting up a Freshdesk account from the service's setup page: an admin's API key, checked
with Freshdesk, then the installation `flask freshdesk register` would make (docs/connect.md).

No Flask here: callers pass the database session, the vault and the HTTP session, and commit.
"""

from __future__ import annotations

import requests
from sqlalchemy.orm import Session

from plugin.helpdesks import freshdesk
from plugin.helpdesks.connect import NOT_ALLOWED, ConnectRefused, account_allowed
from plugin.helpdesks.credentials import CredentialsVault
from plugin.helpdesks.freshdesk import FreshdeskClient, FreshdeskCredentials
from plugin.helpdesks.freshdesk_installations import (
    Registration,
    freshdesk_installation,
    register_freshdesk,
)
from plugin.helpdesks.http import CallBudget
from plugin.helpdesks.installations import RegistrationError
from plugin.helpdesks.interface import HelpdeskError

# Freshdesk's default admin roles, by name: agents all carry the role "agent", so an admin is
# known by the names of the roles their `role_ids` point at (docs/connect.md: unconfirmed).
ADMIN_ROLE_NAMES = frozenset({"account administrator", "administrator"})


def setup_freshdesk(
    session: Session,
    vault: CredentialsVault,
    *,
    domain: str,
    api_key: str,
    allowed_accounts: tuple[str, ...],
    api_base_url: str | None,
    http_session: requests.Session,
    timeout: float,
) -> Registration:
    """Check the key is an admin's of the account, then register the account.

    A new account's secret is in the registration, to show once. An account already set up is
    refused here (its admin rotates the key with the CLI or the console), so the page cannot
    replace another admin's connection. Raises ConnectRefused; nothing is stored then.
    """
    try:
        account = freshdesk.account_from_domain(domain)
    except ValueError:
        account = ""
    if not account or not freshdesk.valid_subdomain(account):
        raise ConnectRefused("Enter the helpdesk's Freshdesk address, such as acme.freshdesk.com.")
    if not account_allowed(allowed_accounts, freshdesk.PLATFORM, account):
        raise ConnectRefused(NOT_ALLOWED)
    if freshdesk_installation(session, account) is not None:
        raise ConnectRefused(
            "This Freshdesk account is set up here already. To change its API key or secret, "
            "ask whoever runs the service (flask freshdesk register / rotate-secret)."
        )
    try:
        credentials = FreshdeskCredentials(api_key=api_key.strip())
    except ValueError as error:
        raise ConnectRefused(str(error)) from None
    client = FreshdeskClient(
        session=http_session,
        base_url=freshdesk.base_url_for(account, api_base_url),
        credentials=credentials,
        budget=CallBudget(calls_per_minute=freshdesk.DEFAULT_CALLS_PER_MINUTE),
        timeout=timeout,
    )
    try:
        agent = client.current_agent()
        roles = client.role_names(role_ids=agent.person.role_ids)
    except HelpdeskError as error:
        raise ConnectRefused(f"Freshdesk did not accept this API key: {error}") from None
    if not ADMIN_ROLE_NAMES & {name.strip().lower() for name in roles}:
        raise ConnectRefused("This API key is not an admin's: use an administrator's API key.")
    try:
        return register_freshdesk(
            session, vault, domain=account, credentials=credentials, api_base_url=api_base_url
        )
    except RegistrationError as error:
        raise ConnectRefused(str(error)) from None
