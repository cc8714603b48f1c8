"""Connecting a Zendesk account from the app itself: its first launch, then an admin's OAuth
grant or API token, checked to be that admin's own (docs/connect.md).

No Flask here: callers pass the database session, the vault and HTTP sessions, and commit.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.helpdesks import zendesk
from plugin.helpdesks.credentials import CredentialsError, CredentialsVault
from plugin.helpdesks.http import CallBudget
from plugin.helpdesks.interface import HelpdeskError
from plugin.helpdesks.tokens import InvalidToken, verify_launch_token
from plugin.helpdesks.zendesk import ZendeskClient, ZendeskCredentials
from plugin.helpdesks.zendesk_installations import set_app_installation, zendesk_installation
from plugin.models import Installation, OAuthConnectState

logger = logging.getLogger(__name__)

# Zendesk's audience for an app installation; nothing else starts a first launch.
_AUDIENCE = re.compile(
    r"https://([a-z0-9][a-z0-9-]{0,62})\.zendesk\.com/api/v2/apps/installations/([0-9]{1,64})\.json"
)
OAUTH_STATE_LIFETIME = timedelta(minutes=10)
OAUTH_SCOPE = "read write"
NOT_ALLOWED = (
    "This helpdesk account is not allowed to connect to this Regulars service. Ask whoever "
    "runs the service to add it to REGULARS_ALLOWED_ACCOUNTS."
)
NOT_CONNECTED = (
    "An admin needs to connect Regulars to this helpdesk account: an admin opens Regulars from "
    "the helpdesk's nav bar and follows Connect."
)


class ConnectRefused(Exception):
    """A connect was refused; the message says why, never with a secret, and nothing was kept."""


class NotConnected(InvalidToken):
    """A genuine launch of an installation no admin has connected yet (no credentials)."""

    def __init__(self, installation: Installation, user_id: str | None) -> None:
        super().__init__(NOT_CONNECTED)
        self.installation = installation
        self.user_id = user_id


# --- Who may connect ---------------------------------------------------------------------------


def account_allowed(allowed: Iterable[str], platform: str, account: str) -> bool:
    """Say whether the operator's list lets the account connect: empty lets every account.

    An entry is an account name (`acme`: either helpdesk) or a host (`acme.zendesk.com`).
    """
    entries = {entry.strip().lower() for entry in allowed if entry.strip()}
    if not entries:
        return True
    name = account.strip().lower()
    return name in entries or f"{name}.{platform}.com" in entries


def parse_audience(audience: str) -> tuple[str, str] | None:
    """The subdomain and app installation id in a Zendesk launch token's audience, if it is one."""
    match = _AUDIENCE.fullmatch(audience)
    return None if match is None else (match.group(1), match.group(2))


# --- The first launch --------------------------------------------------------------------------


@dataclass(frozen=True)
class FirstLaunchSettings:
    """What the operator configured: the app id, the allowed accounts, a base URL for fakes."""

    app_id: str
    allowed_accounts: tuple[str, ...]
    api_base_url: str | None
    leeway: int
    timeout: float


def first_launch(
    session: Session,
    token: str,
    audience: str,
    *,
    config: FirstLaunchSettings,
    http_session: requests.Session,
    now: datetime,
) -> Installation:
    """Verify a launch for an audience never seen here and keep its installation, unconnected.

    The key comes from the account named in the audience, under the configured app id (never
    one from the token); the token passes every check a registered installation's would
    (the caller records its `jti`). Raises InvalidToken; nothing is stored unless it passes.
    """
    parsed = parse_audience(audience)
    if parsed is None or not config.app_id:
        raise InvalidToken("The launch token is not for an installation registered here.")
    subdomain, app_installation_id = parsed
    if not account_allowed(config.allowed_accounts, zendesk.PLATFORM, subdomain):
        raise InvalidToken(NOT_ALLOWED)
    existing = zendesk_installation(session, subdomain)
    if existing is not None and (existing.token_audience or existing.app_id != config.app_id):
        raise InvalidToken(
            "This Zendesk account is connected here with another installation of the app; "
            "an admin runs the connection check in the console to update it."
        )
    # One registered by the CLI keeps the API base URL it was given.
    api_base_url = existing.api_base_url if existing is not None else config.api_base_url
    base_url = zendesk.base_url_for(subdomain, api_base_url)
    try:
        pem = zendesk.fetch_public_key(
            http_session, base_url, config.app_id, timeout=config.timeout
        )
    except HelpdeskError as error:
        raise InvalidToken(f"Regulars could not fetch the app's public key: {error}") from None
    candidate = Installation(
        platform=zendesk.PLATFORM,
        account=subdomain,
        app_id=config.app_id,
        public_key_pem=pem,
        token_audience=audience,
    )
    # Verified before anything is stored: a forged token leaves no row behind.
    verify_launch_token(token, find_installation=lambda _: candidate, leeway=config.leeway)
    installation = existing or Installation(
        platform=zendesk.PLATFORM, account=subdomain, display_name=subdomain
    )
    installation.app_id = config.app_id
    installation.api_base_url = api_base_url
    set_app_installation(installation, app_installation_id)
    installation.public_key_pem = pem
    installation.public_key_fetched_at = now
    session.add(installation)
    session.flush()
    logger.info("Zendesk account %s launched the app for the first time", subdomain)
    return installation


# --- Connecting: the credentials must be the launching admin's ---------------------------------


def check_admin_credentials(
    installation: Installation,
    credentials: ZendeskCredentials,
    launching_user: str,
    *,
    http_session: requests.Session,
    timeout: float,
) -> None:
    """Refuse credentials that are not the launching user's own, or not an admin's.

    Zendesk answers `users/me` for the account the call is made to: a token of another
    account is not accepted there, or acts for someone other than the launching user.
    """
    client = ZendeskClient(
        session=http_session,
        base_url=zendesk.base_url_for(installation.account, installation.api_base_url),
        credentials=credentials,
        budget=CallBudget(),
        timeout=timeout,
    )
    try:
        me = client.current_user()
    except HelpdeskError as error:
        raise ConnectRefused(f"Zendesk did not accept these credentials: {error}") from None
    if me.id != launching_user:
        raise ConnectRefused(
            "These credentials belong to another user (or another account) than the admin who "
            "opened Regulars: connect with your own."
        )
    if me.role != "admin":
        raise ConnectRefused("Only an admin of this Zendesk account can connect Regulars.")


def store_credentials(
    installation: Installation, vault: CredentialsVault, credentials: ZendeskCredentials
) -> None:
    """Keep the credentials, encrypted; the installation is connected from now on."""
    installation.credentials_encrypted = vault.encrypt(credentials.to_dict())
    logger.info("Zendesk installation %s connected from the app", installation.account)


# --- OAuth: authorization code grant with PKCE -------------------------------------------------


@dataclass(frozen=True)
class OAuthClient:
    """The operator's Zendesk OAuth client, and where Zendesk sends the admin back."""

    client_id: str
    client_secret: str
    redirect_uri: str


@dataclass(frozen=True)
class TakenState:
    installation_id: int
    user_id: str
    code_verifier: str


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def start_oauth(
    session: Session,
    vault: CredentialsVault,
    installation: Installation,
    user_id: str,
    *,
    client: OAuthClient,
    now: datetime,
) -> str:
    """Keep a new single-use state for the installation and user; return Zendesk's authorize URL."""
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    session.execute(
        sa.delete(OAuthConnectState).where(
            OAuthConnectState.installation_id == installation.id,
            OAuthConnectState.expires_at < now,
        )
    )
    session.add(
        OAuthConnectState(
            installation_id=installation.id,
            state_hash=_hash(state),
            user_id=user_id,
            code_verifier_encrypted=vault.encrypt({"code_verifier": verifier}),
            expires_at=now + OAUTH_STATE_LIFETIME,
        )
    )
    session.flush()
    base_url = zendesk.base_url_for(installation.account, installation.api_base_url)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": client.redirect_uri,
            "scope": OAUTH_SCOPE,
            "state": state,
            "code_challenge": challenge.decode("ascii"),
            "code_challenge_method": "S256",
        }
    )
    return f"{base_url}/oauth/authorizations/new?{query}"


def take_oauth_state(
    session: Session, vault: CredentialsVault, state: str, *, now: datetime
) -> TakenState:
    """Use up a state: unknown, expired or already used ones are refused."""
    if not state or len(state) > 200:
        raise ConnectRefused("This connect link is not valid. Start again from the Connect page.")
    row = session.scalars(
        sa.select(OAuthConnectState).where(OAuthConnectState.state_hash == _hash(state))
    ).first()
    if row is None:
        raise ConnectRefused(
            "This connect link is not valid or was already used. Start again from the Connect page."
        )
    session.delete(row)
    session.flush()
    if row.expires_at < now:
        raise ConnectRefused("This connect link has expired. Start again from the Connect page.")
    try:
        verifier = vault.decrypt(row.code_verifier_encrypted)["code_verifier"]
    except (CredentialsError, KeyError):
        raise ConnectRefused("This connect link can no longer be read. Start again.") from None
    return TakenState(
        installation_id=row.installation_id, user_id=row.user_id, code_verifier=verifier
    )


def exchange_code(
    http_session: requests.Session,
    installation: Installation,
    *,
    client: OAuthClient,
    code: str,
    code_verifier: str,
    timeout: float,
) -> str:
    """Exchange the authorization code for an access token at the account's `/oauth/tokens`."""
    base_url = zendesk.base_url_for(installation.account, installation.api_base_url)
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "code_verifier": code_verifier,
        "scope": OAUTH_SCOPE,
    }
    if client.client_secret:
        body["client_secret"] = client.client_secret
    try:
        response = http_session.post(f"{base_url}/oauth/tokens", json=body, timeout=timeout)
    except requests.RequestException as error:
        raise ConnectRefused(f"Zendesk could not be reached: {type(error).__name__}") from None
    if response.status_code != 200:
        raise ConnectRefused(
            f"Zendesk refused the authorization code ({response.status_code}). Start again."
        )
    try:
        token = response.json().get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise ConnectRefused("Zendesk's answer held no access token. Start again.")
    return token
