"""A Shopify store connected to an installation: its token stored encrypted, the client made
for it, and the connection check an admin runs, in words they can act on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.customers.shopify_client import (
    DEFAULT_CALLS_PER_MINUTE,
    ShopifyClient,
    ShopifyError,
    base_url_for,
    shop_domain,
)
from plugin.gestures.scopes import describe_gesture_scopes
from plugin.helpdesks.credentials import CredentialsError, CredentialsVault
from plugin.helpdesks.http import AccountSessions, CallBudget
from plugin.helpdesks.installations import (
    Check,
    CheckStatus,
    ConnectionReport,
    RegistrationError,
    validate_api_base_url,
)
from plugin.models import Installation

MAX_ACCESS_TOKEN = 255
REQUIRED_SCOPES = ("read_customers", "read_orders")
ALL_ORDERS_SCOPE = "read_all_orders"

# The connection check's steps; names, not secrets.
CHECK_SHOP = "Shop reachable"
CHECK_TOKEN = "Access token valid"  # noqa: S105
CHECK_SCOPES = "Access scopes granted"
CHECK_CURRENCY = "Currency matches"
CHECK_GESTURES = "Gestures the shop can give"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShopifyConnection:
    """A store connected to an installation, with its token decrypted."""

    shop: str
    access_token: str = field(repr=False)
    api_base_url: str | None = None

    @property
    def base_url(self) -> str:
        return base_url_for(self.shop, self.api_base_url)


def connect_shopify(
    session: Session,
    installation: Installation,
    vault: CredentialsVault,
    *,
    shop: str,
    access_token: str,
    api_base_url: str | None = None,
) -> ShopifyConnection:
    """Connect (or reconnect) a store to the installation, storing its token encrypted.

    Raises RegistrationError naming the unusable value, never showing the token. The caller
    commits, and may then run `check_shopify`.
    """
    domain = shop_domain(shop)
    token = access_token.strip()
    if (
        not token
        or len(token) > MAX_ACCESS_TOKEN
        or any(char.isspace() or ord(char) < 32 for char in token)
    ):
        raise RegistrationError(
            f"the access token must be 1 to {MAX_ACCESS_TOKEN} characters without spaces"
        )
    secrets = {"access_token": token}
    if api_base_url is not None:
        secrets["api_base_url"] = validate_api_base_url(api_base_url, example=f"https://{domain}")
    installation.shopify_shop = domain
    installation.shopify_credentials_encrypted = vault.encrypt(secrets)
    session.flush()
    logger.info("connected Shopify store %s to installation %s", domain, installation.account)
    return ShopifyConnection(
        shop=domain, access_token=token, api_base_url=secrets.get("api_base_url")
    )


def disconnect_shopify(session: Session, installation: Installation) -> bool:
    """Forget the installation's store and token; return whether one was connected.

    Stored customers, orders and facts stay: they were true when fetched and say so.
    """
    connected = installation.shopify_shop is not None
    installation.shopify_shop = None
    installation.shopify_credentials_encrypted = None
    session.flush()
    if connected:
        logger.info("disconnected Shopify from installation %s", installation.account)
    return connected


def shopify_connection(
    installation: Installation, vault: CredentialsVault
) -> ShopifyConnection | None:
    """Return the installation's connected store, or None; CredentialsError if unreadable."""
    if installation.shopify_shop is None:
        return None
    if not installation.shopify_credentials_encrypted:
        raise CredentialsError(
            f"installation {installation.account} has no stored Shopify token; connect the "
            "store again with `flask data shopify connect`"
        )
    secrets = vault.decrypt(installation.shopify_credentials_encrypted)
    unknown = set(secrets) - {"access_token", "api_base_url"}
    if unknown or not secrets.get("access_token"):
        raise CredentialsError(
            f"the stored Shopify credentials of installation {installation.account} are not "
            "a Shopify access token; connect the store again"
        )
    return ShopifyConnection(
        shop=installation.shopify_shop,
        access_token=secrets["access_token"],
        api_base_url=secrets.get("api_base_url"),
    )


def shopify_client_for(
    installation: Installation,
    vault: CredentialsVault,
    accounts: AccountSessions,
    *,
    timeout: float,
) -> ShopifyClient | None:
    """Return a client for the installation's store, or None when none is connected.

    The pooled session and the call budget are the store's in `accounts`, shared by every
    request and thread, as the helpdesk clients share theirs.
    """
    connection = shopify_connection(installation, vault)
    if connection is None:
        return None
    base_url = connection.base_url
    return ShopifyClient(
        session=accounts.session(base_url),
        shop=connection.shop,
        access_token=connection.access_token,
        budget=accounts.budget(base_url, calls_per_minute=DEFAULT_CALLS_PER_MINUTE),
        timeout=timeout,
        api_base_url=connection.api_base_url,
    )


def reencrypt_shopify_credentials(session: Session, vault: CredentialsVault) -> int:
    """Re-encrypt every stored Shopify token with the vault's first key; return how many.

    The companion of `installations.reencrypt_credentials` for key rotation: all or nothing,
    the caller commits.
    """
    installations = session.scalars(
        sa.select(Installation)
        .where(Installation.shopify_credentials_encrypted.is_not(None))
        .order_by(Installation.id)
    )
    count = 0
    for installation in installations:
        assert installation.shopify_credentials_encrypted is not None  # as selected
        try:
            installation.shopify_credentials_encrypted = vault.rotate(
                installation.shopify_credentials_encrypted
            )
        except CredentialsError as error:
            raise CredentialsError(
                f"installation {installation.platform}:{installation.account} (Shopify): {error}"
            ) from None
        count += 1
    session.flush()
    return count


# --- The connection check ---------------------------------------------------------------------


def check_shopify(
    installation: Installation,
    vault: CredentialsVault,
    *,
    http_session: requests.Session,
    timeout: float,
) -> ConnectionReport:
    """Check that Regulars can read the installation's store, in words an admin can act on.

    One query (the shop's name and currency, the token's scopes) proves the token works.
    Raises CredentialsError when no store is connected or its token cannot be decrypted.
    """
    connection = shopify_connection(installation, vault)
    if connection is None:
        raise CredentialsError(
            f"installation {installation.account} has no Shopify store; connect one with "
            "`flask data shopify connect`"
        )
    client = ShopifyClient(
        session=http_session,
        shop=connection.shop,
        access_token=connection.access_token,
        budget=CallBudget(calls_per_minute=DEFAULT_CALLS_PER_MINUTE),
        timeout=timeout,
        api_base_url=connection.api_base_url,
    )
    host = urlsplit(connection.base_url).hostname or connection.shop
    try:
        status = client.shop_status()
    except ShopifyError as error:
        return _failed_check(error, host=host, shop=connection.shop, timeout=timeout)
    return ConnectionReport(
        checks=(
            Check(CHECK_SHOP, CheckStatus.OK, f"{connection.base_url} answered"),
            Check(CHECK_TOKEN, CheckStatus.OK, f"Signed in to the shop {status.name}"),
            _scopes_check(status.scopes),
            _currency_check(status.currency, installation.currency),
            # Informative: gestures are optional, so a missing gesture scope fails nothing.
            Check(CHECK_GESTURES, CheckStatus.OK, describe_gesture_scopes(status.scopes)),
        )
    )


def _failed_check(error: ShopifyError, *, host: str, shop: str, timeout: float) -> ConnectionReport:
    unreachable = error.transport is not None or error.status == 404
    if unreachable:
        first = Check(CHECK_SHOP, CheckStatus.FAILED, _unreachable(error, host, shop, timeout))
        rest = [CHECK_TOKEN, CHECK_SCOPES, CHECK_CURRENCY, CHECK_GESTURES]
        reason = "skipped: the shop is not reachable"
    else:
        first = Check(CHECK_SHOP, CheckStatus.OK, f"{host} answered")
        rest = [CHECK_SCOPES, CHECK_CURRENCY, CHECK_GESTURES]
        reason = "skipped: needs a working access token"
    checks = [first]
    if not unreachable:
        checks.append(Check(CHECK_TOKEN, CheckStatus.FAILED, _refused(error, host)))
    checks.extend(Check(name, CheckStatus.SKIPPED, reason) for name in rest)
    return ConnectionReport(checks=tuple(checks))


def _unreachable(error: ShopifyError, host: str, shop: str, timeout: float) -> str:
    match error.transport:
        case None:  # a 404
            return (
                f"There is no Shopify store at {shop} (404): check the shop's myshopify.com address"
            )
        case "timeout":
            return f"{host} did not answer within {timeout:g} s: check the network, or try again"
        case "unresolved":
            return f"The host name {host} does not resolve: check the shop address"
        case "refused":
            return f"{host} refused the connection: check the API base URL"
        case "tls":
            return f"The secure connection to {host} failed: check the API base URL"
        case "invalid_url":
            return "The API base URL is not usable: connect the store again"
        case "broken":
            return f"The connection to {host} broke off mid-answer: try again"
        case _:
            return f"Could not connect to {host}: check the network and the shop address"


def _refused(error: ShopifyError, host: str) -> str:
    if error.status == 401:
        return (
            "Shopify refused the access token (401): it is wrong or the app was uninstalled. "
            "Copy the Admin API access token of the store's custom app and connect again"
        )
    if error.status == 402:
        return "The shop is frozen for an unpaid Shopify bill (402): its owner must settle it"
    if error.status == 403:
        return "Shopify refused the token access to the Admin API (403)"
    if error.status == 423:
        return "The shop is locked (423): its owner must contact Shopify"
    if error.status == 429 or error.code == "THROTTLED":
        wait = error.retry_after if error.retry_after is not None else 2
        return f"Shopify is rate-limiting this app: try again in {wait:.0f} s"
    if error.status is not None and error.status >= 500:
        return (
            f"Shopify had an error ({error.status}): try again later, and see "
            "shopifystatus.com if it lasts"
        )
    if error.status is None and error.code is None:
        # An answer that is not a GraphQL answer: likely not Shopify at all.
        return f"{host} does not answer like Shopify's Admin API ({error}): check the address"
    return f"Shopify refused the check: {error}"


def _scopes_check(granted: frozenset[str]) -> Check:
    missing = [
        scope
        for scope in REQUIRED_SCOPES
        if scope not in granted and scope.replace("read_", "write_", 1) not in granted
    ]
    if missing:
        return Check(
            CHECK_SCOPES,
            CheckStatus.FAILED,
            f"The token lacks {', '.join(missing)}: add the scope to the custom app's Admin API "
            "access scopes, reinstall the app and connect its new token",
        )
    message = ", ".join(REQUIRED_SCOPES) + " granted"
    if ALL_ORDERS_SCOPE not in granted:
        message += (
            f"; without {ALL_ORDERS_SCOPE} Shopify may show only the last 60 days of orders "
            "(its order count and amount spent are still lifetime)"
        )
    return Check(CHECK_SCOPES, CheckStatus.OK, message)


def _currency_check(shop_currency: str, installation_currency: str) -> Check:
    if shop_currency == installation_currency:
        return Check(CHECK_CURRENCY, CheckStatus.OK, f"The shop sells in {shop_currency}")
    return Check(
        CHECK_CURRENCY,
        CheckStatus.FAILED,
        f"The shop sells in {shop_currency} but the installation shows amounts in "
        f"{installation_currency}: Shopify amounts would be shown in the wrong currency until "
        f"the installation's currency is {shop_currency}",
    )
