"""The Zendesk connection check: API reachable, credentials valid, the app's installation found
and its public key fetched, each failure said in words an admin can act on.

No Flask here: `flask zendesk check` and the console call it with the database session, the
credentials vault and the HTTP session; the caller commits what the check fixed on the way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import requests
from sqlalchemy.orm import Session

from plugin.customers.phone_region import adopt_account_region
from plugin.domain.helpdesk import Person
from plugin.helpdesks import zendesk
from plugin.helpdesks.credentials import CredentialsVault
from plugin.helpdesks.http import CallBudget
from plugin.helpdesks.installations import (
    Check,
    CheckStatus,
    ConnectionReport,
    RegistrationError,
)
from plugin.helpdesks.interface import HelpdeskError
from plugin.helpdesks.zendesk import (
    CredentialsRejected,
    ZendeskClient,
    ZendeskCredentials,
    ZendeskError,
)
from plugin.helpdesks.zendesk_installations import (
    refresh_public_key,
    set_app_installation,
    zendesk_credentials,
)
from plugin.models import Installation

CHECK_API = "API reachable"
CHECK_CREDENTIALS = "Credentials valid"
CHECK_APP_INSTALLATION = "App installation found"
CHECK_PUBLIC_KEY = "Public key fetched"


def check_connection(
    session: Session,
    installation: Installation,
    vault: CredentialsVault,
    *,
    http_session: requests.Session,
    timeout: float,
    now: datetime,
) -> ConnectionReport:
    """Check that Regulars can work with the installation, fixing what it can on the way.

    Finds and stores the app installation id when unknown, and fetches the public key.
    Raises CredentialsError when the stored credentials cannot be decrypted.
    """
    base_url = zendesk.base_url_for(installation.account, installation.api_base_url)
    credentials = zendesk_credentials(installation, vault)
    client = ZendeskClient(
        session=http_session,
        base_url=base_url,
        credentials=credentials,
        budget=CallBudget(),
        timeout=timeout,
    )
    explain = _Explainer(base_url=base_url, timeout=timeout)
    try:
        me: Person | None = client.current_user()
        me_error: HelpdeskError | None = None
    except HelpdeskError as error:
        me, me_error = None, error

    if isinstance(me_error, ZendeskError) and me_error.transport is not None:
        reason = "skipped: the API is not reachable"
        return ConnectionReport(
            checks=(
                Check(CHECK_API, CheckStatus.FAILED, explain.transport(me_error)),
                Check(CHECK_CREDENTIALS, CheckStatus.SKIPPED, reason),
                Check(CHECK_APP_INSTALLATION, CheckStatus.SKIPPED, reason),
                Check(CHECK_PUBLIC_KEY, CheckStatus.SKIPPED, reason),
            )
        )
    checks = [Check(CHECK_API, CheckStatus.OK, f"{base_url} answered")]
    credentials_check = _credentials_check(me, me_error, credentials, explain)
    checks.append(credentials_check)
    if credentials_check.status is CheckStatus.OK:
        checks.append(_app_installation_check(session, installation, client, explain))
        # The default phone region, from the account's time zone, unless an admin set one.
        adopt_account_region(session, installation, client.account_region)
    else:
        checks.append(
            Check(CHECK_APP_INSTALLATION, CheckStatus.SKIPPED, "skipped: needs valid credentials")
        )
    checks.append(
        _public_key_check(
            session, installation, explain, http_session=http_session, timeout=timeout, now=now
        )
    )
    return ConnectionReport(checks=tuple(checks))


def _credentials_check(
    me: Person | None,
    error: HelpdeskError | None,
    credentials: ZendeskCredentials,
    explain: _Explainer,
) -> Check:
    if me is None:
        assert error is not None  # one or the other
        if isinstance(error, CredentialsRejected):
            if credentials.oauth_token:
                message = "Zendesk refused the OAuth token: it is wrong, expired or revoked"
            else:
                message = (
                    "The API token or email is wrong: Zendesk refused them. Check that the email "
                    "is the agent's whose token it is and that token access is on (Admin Center "
                    "> Apps and integrations > Zendesk API)"
                )
            return Check(CHECK_CREDENTIALS, CheckStatus.FAILED, message)
        message = explain.error(
            error,
            forbidden="The token lacks permission to read its own user (403): Zendesk may "
            "restrict API access by IP address, or the user may be suspended",
            not_found=f"There is no Zendesk API at {explain.base_url} (404): check the "
            "subdomain, or the API base URL",
        )
        return Check(CHECK_CREDENTIALS, CheckStatus.FAILED, message)
    who = f"{me.name} <{me.email}>" if me.email else me.name
    if me.role not in {"agent", "admin"}:
        return Check(
            CHECK_CREDENTIALS,
            CheckStatus.FAILED,
            f"The credentials sign in as {who}, who is {_role(me.role)}: use an agent's or an "
            "admin's",
        )
    return Check(CHECK_CREDENTIALS, CheckStatus.OK, f"Signed in as {who} ({me.role})")


def _role(role: str | None) -> str:
    return "an end user" if role == "end-user" else f"not an agent (role {role or 'unknown'})"


def _app_installation_check(
    session: Session, installation: Installation, client: ZendeskClient, explain: _Explainer
) -> Check:
    app_id = installation.app_id
    if not app_id:
        return Check(
            CHECK_APP_INSTALLATION,
            CheckStatus.FAILED,
            "No app id is registered: register again with --app-id",
        )
    try:
        found = client.app_installations(app_id)
    except HelpdeskError as error:
        message = explain.error(
            error,
            forbidden="The token lacks permission to list app installations (403): use an "
            "admin's token, or register with --installation-id",
            not_found="Zendesk has no app installations list here (404): check the API base URL",
        )
        return Check(CHECK_APP_INSTALLATION, CheckStatus.FAILED, message)
    listed = ", ".join(found) or "none"
    known = installation.app_installation_id
    if known is not None:
        if known in found:
            return Check(
                CHECK_APP_INSTALLATION,
                CheckStatus.OK,
                f"Installation {known} of app {app_id} is in {installation.account}",
            )
        return Check(
            CHECK_APP_INSTALLATION,
            CheckStatus.FAILED,
            f"App {app_id} has no installation {known} in {installation.account} (installed: "
            f"{listed}): register again with the right --installation-id, or without it to "
            "discover it",
        )
    if not found:
        return Check(
            CHECK_APP_INSTALLATION,
            CheckStatus.FAILED,
            f"App {app_id} is not installed in {installation.account}: install it (Admin "
            "Center > Apps and integrations > Zendesk Support apps), or check the app id",
        )
    if len(found) > 1:
        return Check(
            CHECK_APP_INSTALLATION,
            CheckStatus.FAILED,
            f"App {app_id} is installed {len(found)} times in {installation.account} "
            f"({listed}): register again with --installation-id to pick one",
        )
    set_app_installation(installation, found[0])
    session.flush()
    return Check(
        CHECK_APP_INSTALLATION,
        CheckStatus.OK,
        f"Found installation {found[0]} of app {app_id} and saved it",
    )


def _public_key_check(
    session: Session,
    installation: Installation,
    explain: _Explainer,
    *,
    http_session: requests.Session,
    timeout: float,
    now: datetime,
) -> Check:
    had_key = installation.public_key_pem is not None
    try:
        changed = refresh_public_key(
            session, installation, http_session=http_session, timeout=timeout, now=now
        )
    except RegistrationError as error:
        return Check(CHECK_PUBLIC_KEY, CheckStatus.FAILED, str(error))
    except HelpdeskError as error:
        message = explain.error(
            error,
            forbidden=f"Zendesk refused to serve app {installation.app_id}'s public key (403)",
            not_found=f"Zendesk has no app {installation.app_id} (404 for its public key): "
            "check the app id",
        )
        return Check(CHECK_PUBLIC_KEY, CheckStatus.FAILED, message)
    if not had_key:
        message = "Fetched the key Zendesk signs this app's launch tokens with"
    elif changed:
        message = "Fetched the key: it has changed since last time, and is now the one used"
    else:
        message = "Fetched the key: unchanged"
    return Check(CHECK_PUBLIC_KEY, CheckStatus.OK, message)


@dataclass(frozen=True)
class _Explainer:
    """Turn client errors into messages an admin can act on, built only from what is safe."""

    base_url: str
    timeout: float

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or self.base_url

    def transport(self, error: ZendeskError) -> str:
        host = self.host
        match error.transport:
            case "timeout":
                return (
                    f"{host} did not answer within {self.timeout:g} s: check the network and "
                    "any proxy or firewall, or try again"
                )
            case "unresolved":
                return f"The host name {host} does not resolve: check the subdomain or API base URL"
            case "refused":
                return (
                    f"{host} refused the connection: check the API base URL and that the server "
                    "is up"
                )
            case "tls":
                return (
                    f"The secure connection to {host} failed: check the API base URL and the "
                    "server's certificate"
                )
            case "invalid_url":
                return f"The API base URL {self.base_url} is not usable: register it again"
            case "broken":
                return f"The connection to {host} broke off mid-answer: try again"
            case _:
                return f"Could not connect to {host}: check the network and the API base URL"

    def error(self, error: HelpdeskError, *, forbidden: str, not_found: str) -> str:
        if not isinstance(error, ZendeskError):
            # Zendesk answered with something the client cannot read: likely not Zendesk.
            return (
                f"{self.base_url} does not answer like the Zendesk API ({error}): check the "
                "subdomain or API base URL"
            )
        if error.transport is not None:
            return self.transport(error)
        if error.status == 403:
            return forbidden
        if error.status == 404:
            return not_found
        if error.status == 429:
            wait = error.retry_after if error.retry_after is not None else 60
            return f"Zendesk is rate-limiting this account (429): try again in {wait:.0f} s"
        if error.status is not None and error.status >= 500:
            return (
                f"Zendesk had an error ({error.status}): try again later, and see "
                "status.zendesk.com if it lasts"
            )
        return f"Zendesk refused the call ({error.status}): {error}"
