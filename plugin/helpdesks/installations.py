"""Zendesk installations: registering them, their stored credentials, the connection check,
and which helpdesk fields and tags become customer facts.

No Flask here: callers pass the database session, the credentials vault and the HTTP session,
and commit when they are done.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.domain.helpdesk import Person
from plugin.helpdesks import zendesk
from plugin.helpdesks.credentials import CredentialsError, CredentialsVault
from plugin.helpdesks.interface import HelpdeskError
from plugin.helpdesks.zendesk import (
    CallBudget,
    CredentialsRejected,
    ZendeskClient,
    ZendeskCredentials,
    ZendeskError,
)
from plugin.models import FieldMapping, Installation

logger = logging.getLogger(__name__)

_NUMERIC_ID = re.compile(r"[0-9]{1,64}")
_FACT_NAME = re.compile(r"[a-z][a-z0-9_]{0,99}")
MAX_DISPLAY_NAME = 255
MAX_API_BASE_URL = 500
MAX_MAPPING_KEY = 255

USER_FIELD = "user_field"
ORGANIZATION_FIELD = "organization_field"
TAG = "tag"
MAPPING_KINDS = (USER_FIELD, ORGANIZATION_FIELD, TAG)

CHECK_API = "API reachable"
CHECK_CREDENTIALS = "Credentials valid"
CHECK_APP_INSTALLATION = "App installation found"
CHECK_PUBLIC_KEY = "Public key fetched"


class RegistrationError(ValueError):
    """A registration value is unusable; the message names the field and never a secret."""


class MappingError(ValueError):
    """A field mapping is unusable; the message names what is wrong."""


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
    name = None if display_name is None else _display_name(display_name)

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
        _set_app_installation(installation, installation_id)
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


def _set_app_installation(installation: Installation, app_installation_id: str) -> None:
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


def _display_name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > MAX_DISPLAY_NAME:
        raise RegistrationError(f"display_name must be 1 to {MAX_DISPLAY_NAME} characters")
    return name


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


# --- The connection check --------------------------------------------------------------------


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
    _set_app_installation(installation, found[0])
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


# --- Field mappings --------------------------------------------------------------------------


class MappingRule(Protocol):
    """Anything naming a helpdesk field or tag and the fact it becomes: a row or a FactMapping."""

    @property
    def kind(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def fact_name(self) -> str: ...


@dataclass(frozen=True)
class FactMapping:
    """A field mapping detached from the database, safe to cache and share between threads."""

    kind: str
    key: str
    fact_name: str

    @classmethod
    def of(cls, row: FieldMapping) -> FactMapping:
        return cls(kind=row.kind, key=row.key, fact_name=row.fact_name)


def add_mapping(
    session: Session, installation: Installation, *, kind: str, key: str, fact_name: str
) -> FactMapping:
    """Map a user field, organization field or tag to a fact; mapping it again renames the fact."""
    kind = _mapping_kind(kind)
    key = _mapping_key(kind, key)
    if not _FACT_NAME.fullmatch(fact_name):
        raise MappingError(
            "the fact name must start with a lowercase letter and hold only lowercase letters, "
            "digits and underscores, up to 100 characters"
        )
    rows = _mapping_rows(session, installation)
    clash = next(
        (r for r in rows if r.fact_name == fact_name and (r.kind, r.key) != (kind, key)), None
    )
    if clash is not None:
        raise MappingError(
            f"the fact {fact_name!r} already comes from {_describe(clash)}: unmap that first"
        )
    row = next((r for r in rows if (r.kind, r.key) == (kind, key)), None)
    if row is None:
        row = FieldMapping(installation_id=installation.id, kind=kind, key=key, fact_name=fact_name)
        session.add(row)
    else:
        row.fact_name = fact_name
    session.flush()
    return FactMapping.of(row)


def remove_mapping(session: Session, installation: Installation, *, kind: str, key: str) -> bool:
    """Remove the mapping of a field or tag; return whether there was one."""
    kind = _mapping_kind(kind)
    key = _mapping_key(kind, key)
    row = session.scalars(
        sa.select(FieldMapping).where(
            FieldMapping.installation_id == installation.id,
            FieldMapping.kind == kind,
            FieldMapping.key == key,
        )
    ).first()
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def list_mappings(session: Session, installation: Installation) -> list[FactMapping]:
    """Return the installation's mappings, by kind then key."""
    return [FactMapping.of(row) for row in _mapping_rows(session, installation)]


def mapped_facts(person: Person, mappings: Iterable[MappingRule]) -> dict[str, object]:
    """Read the mapped facts off a person: a tag gives True/False, a field its value if set."""
    facts: dict[str, object] = {}
    for mapping in mappings:
        if mapping.kind == TAG:
            facts[mapping.fact_name] = mapping.key in person.tags
            continue
        if mapping.kind == USER_FIELD:
            value = person.fields.get(mapping.key)
        elif mapping.kind == ORGANIZATION_FIELD:
            value = person.organization_fields.get(mapping.key)
        else:
            raise MappingError(f"unknown mapping kind {mapping.kind!r}")
        if value is not None:
            facts[mapping.fact_name] = value
    return facts


def _mapping_rows(session: Session, installation: Installation) -> Sequence[FieldMapping]:
    return session.scalars(
        sa.select(FieldMapping)
        .where(FieldMapping.installation_id == installation.id)
        .order_by(FieldMapping.kind, FieldMapping.key)
    ).all()


def _mapping_kind(kind: str) -> str:
    if kind not in MAPPING_KINDS:
        raise MappingError(f"the mapping kind must be one of {', '.join(MAPPING_KINDS)}")
    return kind


def _mapping_key(kind: str, key: str) -> str:
    # Zendesk lowercases tags; field keys are case-sensitive identifiers.
    cleaned = key.strip().lower() if kind == TAG else key.strip()
    if not cleaned or len(cleaned) > MAX_MAPPING_KEY or any(c.isspace() for c in cleaned):
        what = "tag" if kind == TAG else "field key"
        raise MappingError(f"the {what} must be 1 to {MAX_MAPPING_KEY} characters, no spaces")
    return cleaned


def _describe(mapping: MappingRule) -> str:
    what = {USER_FIELD: "user field", ORGANIZATION_FIELD: "organization field", TAG: "tag"}
    return f"{what.get(mapping.kind, mapping.kind)} {mapping.key!r}"


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
