"""Freshdesk installations: registering an account, the secret its app authenticates with
(rotated without downtime), and the connection check.

The Freshdesk app is a packaged page that reaches the service through Freshworks' request
proxy, which adds the installation's secret (a secure installation parameter) to a header. The
service keeps only the secret's SHA-256. During a rotation the previous secret stays valid until
it expires or is revoked, so the new one can be pasted into Freshdesk's app settings at leisure.

No Flask here: callers pass the database session, the credentials vault and the HTTP session,
and commit when they are done.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session, object_session

from plugin.customers.phone_region import adopt_account_region
from plugin.helpdesks import freshdesk
from plugin.helpdesks.credentials import CredentialsError, CredentialsVault
from plugin.helpdesks.freshdesk import (
    CredentialsRejected,
    FreshdeskAgent,
    FreshdeskClient,
    FreshdeskCredentials,
)
from plugin.helpdesks.http import CallBudget
from plugin.helpdesks.installations import (
    Check,
    CheckStatus,
    ConnectionReport,
    RegistrationError,
    validate_api_base_url,
    validate_display_name,
)
from plugin.helpdesks.interface import HelpdeskError
from plugin.models import Installation

logger = logging.getLogger(__name__)

SECRET_PREFIX = "rgf_"  # noqa: S105 - marks issued secrets, is not one
# Long enough for any secret this module issues (rgf_ and 43 characters), short enough to hash.
MAX_SECRET_LENGTH = 200
# How long a rotated-out secret keeps working unless revoked sooner.
DEFAULT_ROTATION_GRACE = timedelta(hours=24)

CHECK_API = "API reachable"
CHECK_CREDENTIALS = "API key valid"
CHECK_TICKET_ACCESS = "Ticket access"
CHECK_SECRET = "Installation secret"  # noqa: S105 - a check's name


@dataclass(frozen=True)
class Registration:
    """A registered installation, and its new secret when this registration issued one."""

    installation: Installation
    new_secret: str | None


# --- Registering -----------------------------------------------------------------------------


def register_freshdesk(
    session: Session,
    vault: CredentialsVault,
    *,
    domain: str,
    credentials: FreshdeskCredentials,
    api_base_url: str | None = None,
    display_name: str | None = None,
) -> Registration:
    """Create the account's installation, or update its API key and settings.

    A new installation gets a secret, returned once; an update keeps the secret it has.
    """
    account = _account(domain)
    base_url = (
        None
        if api_base_url is None
        else validate_api_base_url(api_base_url, example=f"https://{freshdesk.domain_of(account)}")
    )
    name = None if display_name is None else validate_display_name(display_name)

    installation = freshdesk_installation(session, account)
    if installation is None:
        installation = Installation(platform=freshdesk.PLATFORM, account=account)
        session.add(installation)
        logger.info("registering Freshdesk installation %s", account)
    else:
        logger.info("updating Freshdesk installation %s", account)
    installation.api_base_url = base_url
    installation.display_name = name or installation.display_name or account
    installation.credentials_encrypted = vault.encrypt(credentials.to_dict())
    new_secret = None if installation.freshdesk_secret_hash else issue_secret(installation)
    session.flush()
    return Registration(installation=installation, new_secret=new_secret)


def freshdesk_installation(session: Session, domain: str) -> Installation | None:
    """Return the installation registered for a Freshdesk domain (or account name), if any."""
    try:
        account = freshdesk.account_from_domain(domain)
    except ValueError:
        return None
    return session.scalars(
        sa.select(Installation).where(
            Installation.platform == freshdesk.PLATFORM, Installation.account == account
        )
    ).first()


def freshdesk_installations(session: Session) -> list[Installation]:
    """Return every Freshdesk installation, by account."""
    return list(
        session.scalars(
            sa.select(Installation)
            .where(Installation.platform == freshdesk.PLATFORM)
            .order_by(Installation.account)
        )
    )


def freshdesk_credentials(
    installation: Installation, vault: CredentialsVault
) -> FreshdeskCredentials:
    """Decrypt the installation's stored Freshdesk API key."""
    if not installation.credentials_encrypted:
        raise CredentialsError(
            f"installation {installation.account} has no stored API key; register it with "
            "`flask freshdesk register`"
        )
    try:
        return FreshdeskCredentials.from_dict(vault.decrypt(installation.credentials_encrypted))
    except ValueError as error:  # from_dict names the fields, never their values
        raise CredentialsError(
            f"the stored credentials of installation {installation.account} are not a Freshdesk "
            f"API key: {error}"
        ) from None


def _account(domain: str) -> str:
    try:
        return freshdesk.account_from_domain(domain)
    except ValueError as error:
        raise RegistrationError(str(error)) from None


# --- The installation secret -----------------------------------------------------------------


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_secret(installation: Installation) -> str:
    """Give the installation a new secret at once, ending any rotation; return it."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    installation.freshdesk_secret_hash = _digest(secret)
    installation.freshdesk_previous_secret_hash = None
    installation.freshdesk_previous_secret_expires_at = None
    return secret


def adopt_secret(installation: Installation, secret: str) -> bool:
    """Make `secret` the installation's only secret; return whether that changed anything.

    For a secret derived rather than issued, such as the demo helpdesk's.
    """
    if not secret.startswith(SECRET_PREFIX) or len(secret) > MAX_SECRET_LENGTH:
        raise ValueError(f"an installation secret starts with {SECRET_PREFIX}")
    digest = _digest(secret)
    if (
        installation.freshdesk_secret_hash == digest
        and not installation.freshdesk_previous_secret_hash
    ):
        return False
    installation.freshdesk_secret_hash = digest
    revoke_previous_secret(installation)
    return True


def rotate_secret(installation: Installation, *, now: datetime, grace: timedelta) -> str:
    """Issue a new secret; the current one keeps working for `grace`, then stops. Return it."""
    if grace <= timedelta(0):
        raise ValueError("the grace period must be positive; issue a secret to end it at once")
    previous = installation.freshdesk_secret_hash
    secret = issue_secret(installation)
    if previous is not None:
        installation.freshdesk_previous_secret_hash = previous
        installation.freshdesk_previous_secret_expires_at = now + grace
    return secret


def revoke_previous_secret(installation: Installation) -> bool:
    """End a rotation now: only the current secret works. Return whether one was revoked."""
    had_previous = installation.freshdesk_previous_secret_hash is not None
    installation.freshdesk_previous_secret_hash = None
    installation.freshdesk_previous_secret_expires_at = None
    return had_previous


def installation_for_secret(session: Session, secret: str, *, now: datetime) -> Installation | None:
    """Return the installation whose current, or unexpired previous, secret this is."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > MAX_SECRET_LENGTH:
        return None
    digest = _digest(secret)
    installation = session.scalars(
        sa.select(Installation).where(
            sa.or_(
                Installation.freshdesk_secret_hash == digest,
                Installation.freshdesk_previous_secret_hash == digest,
            )
        )
    ).first()
    if installation is None:
        return None
    # The lookup is by hash, so its timing says nothing about the secret; the comparisons are
    # constant-time anyway, so no index quirk could let a different secret in.
    if hmac.compare_digest(installation.freshdesk_secret_hash or "", digest):
        return installation
    expires_at = installation.freshdesk_previous_secret_expires_at
    if (
        hmac.compare_digest(installation.freshdesk_previous_secret_hash or "", digest)
        and expires_at is not None
        and now < expires_at
    ):
        return installation
    return None


def secret_state(installation: Installation, *, now: datetime) -> str:
    """Describe the installation's secrets for an admin, never showing them."""
    if not installation.freshdesk_secret_hash:
        return "no secret issued"
    expires_at = installation.freshdesk_previous_secret_expires_at
    if installation.freshdesk_previous_secret_hash and expires_at is not None and now < expires_at:
        return f"rotating: the previous secret works until {expires_at:%Y-%m-%d %H:%M} UTC"
    return "one secret"


# --- The connection check --------------------------------------------------------------------


def check_freshdesk_connection(
    installation: Installation,
    vault: CredentialsVault,
    *,
    http_session: requests.Session,
    timeout: float,
    now: datetime,
) -> ConnectionReport:
    """Check that Regulars can read the account's tickets and that its app can authenticate.

    Raises CredentialsError when the stored API key cannot be decrypted.
    """
    base_url = freshdesk.base_url_for(installation.account, installation.api_base_url)
    client = FreshdeskClient(
        session=http_session,
        base_url=base_url,
        credentials=freshdesk_credentials(installation, vault),
        budget=CallBudget(calls_per_minute=freshdesk.DEFAULT_CALLS_PER_MINUTE),
        timeout=timeout,
    )
    secret = _secret_check(installation, now=now)
    try:
        agent = client.current_agent()
    except HelpdeskError as error:
        if error.transport is not None:
            reason = "skipped: the API is not reachable"
            return ConnectionReport(
                checks=(
                    Check(CHECK_API, CheckStatus.FAILED, _transport_advice(error, base_url)),
                    Check(CHECK_CREDENTIALS, CheckStatus.SKIPPED, reason),
                    Check(CHECK_TICKET_ACCESS, CheckStatus.SKIPPED, reason),
                    secret,
                )
            )
        return ConnectionReport(
            checks=(
                Check(CHECK_API, CheckStatus.OK, f"{base_url} answered"),
                Check(CHECK_CREDENTIALS, CheckStatus.FAILED, _credentials_advice(error, base_url)),
                Check(CHECK_TICKET_ACCESS, CheckStatus.SKIPPED, "skipped: needs a valid API key"),
                secret,
            )
        )
    session = object_session(installation)
    if session is not None:
        # The default phone region, from the account's address, unless an admin set one.
        adopt_account_region(session, installation, client.account_region)
    return ConnectionReport(
        checks=(
            Check(CHECK_API, CheckStatus.OK, f"{base_url} answered"),
            Check(CHECK_CREDENTIALS, CheckStatus.OK, f"Signed in as {_who(agent)} (agent)"),
            _ticket_access_check(agent),
            secret,
        )
    )


def _who(agent: FreshdeskAgent) -> str:
    person = agent.person
    return f"{person.name} <{person.email}>" if person.email else person.name


def _ticket_access_check(agent: FreshdeskAgent) -> Check:
    if agent.sees_every_ticket:
        return Check(CHECK_TICKET_ACCESS, CheckStatus.OK, "The API key's agent sees every ticket")
    return Check(
        CHECK_TICKET_ACCESS,
        CheckStatus.FAILED,
        f"{_who(agent)} sees only some tickets (ticket scope {agent.ticket_scope}), so the "
        "sidebar would fail on the others: use the API key of an agent with global access "
        "(Admin > Agents > Scope of access: Global)",
    )


def _secret_check(installation: Installation, *, now: datetime) -> Check:
    state = secret_state(installation, now=now)
    if not installation.freshdesk_secret_hash:
        return Check(
            CHECK_SECRET,
            CheckStatus.FAILED,
            "No secret is issued, so the app cannot authenticate: run `flask freshdesk "
            "rotate-secret` and paste the secret into the app's settings in Freshdesk",
        )
    return Check(CHECK_SECRET, CheckStatus.OK, f"Issued ({state})")


def _transport_advice(error: HelpdeskError, base_url: str) -> str:
    host = base_url.split("://", 1)[-1]
    advice = {
        "timeout": f"{host} did not answer in time: check the network and any proxy, or retry",
        "unresolved": f"The host name {host} does not resolve: check the Freshdesk domain",
        "refused": f"{host} refused the connection: check the API base URL",
        "tls": f"The secure connection to {host} failed: check the server's certificate",
        "invalid_url": f"The API base URL {base_url} is not usable: register it again",
        "broken": f"The connection to {host} broke off mid-answer: try again",
    }
    return advice.get(error.transport or "", f"Could not connect to {host}: check the network")


def _credentials_advice(error: HelpdeskError, base_url: str) -> str:
    if isinstance(error, CredentialsRejected):
        return (
            "Freshdesk refused the API key: copy it again from the agent's Profile settings "
            "(View API key) and run `flask freshdesk register` with it"
        )
    if error.status == 403:
        return (
            "Freshdesk refused access with this API key (403): the account may be suspended or "
            "restrict API access; check Admin > Security"
        )
    if error.status == 404:
        return f"There is no Freshdesk API at {base_url} (404): check the domain or API base URL"
    if error.status == 429:
        wait = error.retry_after if error.retry_after is not None else 60
        return f"Freshdesk is rate-limiting this account (429): try again in {wait:.0f} s"
    if error.status is not None and error.status >= 500:
        return f"Freshdesk had an error ({error.status}): try again later"
    return f"{base_url} does not answer like the Freshdesk API ({error})"
