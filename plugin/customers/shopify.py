"""Shopify as an optional source of customer data: one store per installation.

An installation may connect one Shopify store. `ShopifyClient.customer_by_email` reads a
customer from the store's GraphQL Admin API: who they are, Shopify's lifetime order count and
amount spent, and their recent orders with dates, amounts, discount codes and a category.
`sync_customer` stores that like any other source: the customer and orders through
`plugin.customers.store` (so the "orders" facts are recomputed), and Shopify's own figures as
facts with source "shopify" and the time they were fetched.

Merging. A Shopify customer is stored under the stored customer it already is, if any: the one
whose external id is `shopify:<customer id>`, else the oldest with the same email, else with
the same phone. A customer found that way keeps their external id, so a customer imported by
CSV as `C-1` with the same email is updated, never duplicated. When that customer comes from the
company's own data (an external id not starting `shopify:`), its name, email, phone and
`customer_since` win and Shopify only fills the ones it leaves empty. A customer Shopify
brings first gets the external id `shopify:<id>`; a later CSV row with the same email but
another customer id is then, by the store's rule, another customer. Orders are stored as
`shopify:<order id>` with source "shopify"; test orders are skipped and cancelled ones removed.

Shopify's figures are kept apart from the stored orders because the stored orders are only the
recent ones (and, without the `read_all_orders` scope, Shopify shows only 60 days of orders):
facts "order_count", "total_spend_cents", "spend_currency" and "shopify_customer_id".

Calls are budgeted per store (`CallBudget`, shared through `AccountSessions`), time out, are
never retried blindly, and fail as `ShopifyError`, a `HelpdeskError` with `retryable`, so the
upstream cache serves a stale answer for a Shopify failure exactly as for a helpdesk's. The
access token is sent only in the `X-Shopify-Access-Token` header and appears in no message.

Shopify facts relied on (found with the docs search; URLs as stored there):

- Endpoint `POST https://{shop}.myshopify.com/admin/api/{version}/graphql.json`, token in the
  `X-Shopify-Access-Token` header: shopify.dev/api/admin (GraphQL Admin API reference) and the
  cURL example at shopify.dev/docs/api/admin-graphql/2026-01/queries/customer.
- Versions are quarterly (YYYY-MM), each supported for at least 12 months:
  shopify.dev/api/usage/versioning. 2026-10 is the newest stable version as of 2026-11.
- `customers(first:, query: "email:...")`: community.shopify.com/t/how-to-filter-customer-
  based-on-email-on-the-graphql-api/250529; search values may be quoted (single or double
  quotes), and a backslash escapes special characters: shopify.dev/api/usage/search-syntax.
- `Customer`: `amountSpent` (MoneyV2: `amount`, `currencyCode`), `numberOfOrders`,
  `defaultEmailAddress { emailAddress }` and `defaultPhoneNumber { phoneNumber }` (added in
  2025-04; the 2026-10 field list found has no plain `email`), `displayName`, `createdAt`:
  shopify.dev/docs/api/admin-graphql/2026-10/objects/Customer and the changelog entries
  "Adding defaultEmailAddress / defaultPhoneNumber field to Customer".
- `numberOfOrders` is an UnsignedInt64, sent as a string of digits ("50"):
  shopify.dev/docs/api/admin-graphql/latest/scalars/UnsignedInt64.
- `Order`: only 60 days of orders without `read_all_orders`:
  shopify.dev/docs/api/admin-graphql/2023-01/objects/order. Its fields `id`, `name` (#1001),
  `processedAt`, `cancelledAt`, `test`, `discountCodes` (a list of strings), `totalPriceSet {
  shopMoney { amount currencyCode } }`, `lineItems` and the sort key PROCESSED_AT are as
  public Admin API queries use them (code search); the Order reference page found was cut
  short. `processedAt` rather than `createdAt`, by our reading: an order imported from another
  platform is created at import but processed at the original purchase.
- `Product.productType` and `Product.category` (a TaxonomyCategory with `name`):
  shopify.dev/docs/api/admin-graphql/latest/objects/TaxonomyCategory.
- `currentAppInstallation { accessScopes { handle } }` lists the granted scopes:
  shopify.dev/docs/api/admin-graphql/2025-10/queries/appinstallation.
- Rate limits are a leaky bucket of query cost per app and store (Standard 100 points/s):
  shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits. Every answer carries
  `extensions.cost { requestedQueryCost, throttleStatus { maximumAvailable,
  currentlyAvailable, restoreRate } }`; a throttled call answers `errors[].extensions.code ==
  "THROTTLED"` (community.shopify.com/t/throttled/254776), possibly with HTTP 429
  (community.shopify.com/t/graphql-admin-api-example-throttled-requests-response/8456). A
  field the token's scopes do not cover answers `ACCESS_DENIED` and `"data": null`
  (community.shopify.com/t/is-there-any-api-for-getting-the-installed-app-list/144166).
- Status codes 401 (bad token), 402 (shop frozen), 403, 404, 423 (shop locked), 429, 5xx:
  shopify.dev/api/usage/response-codes and the 423 changelog entry.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
from requests.auth import AuthBase
from requests.exceptions import InvalidSchema, InvalidURL, MissingSchema
from sqlalchemy.orm import Session

from plugin.customers import lookup as customers
from plugin.customers.orders import refresh_order_facts
from plugin.customers.records import (
    MAX_CODE,
    MAX_EMAIL,
    MAX_LABEL,
    MAX_NAME,
    CustomerRecord,
    FieldProblem,
    OrderRecord,
    customer_record,
    normalize_email,
    normalize_phone,
    order_record,
)
from plugin.customers.store import store_customers, store_orders
from plugin.helpdesks.credentials import CredentialsError, CredentialsVault
from plugin.helpdesks.installations import (
    Check,
    CheckStatus,
    ConnectionReport,
    RegistrationError,
    validate_api_base_url,
)
from plugin.helpdesks.interface import HelpdeskError, Transport

# The transport diagnosis is the Zendesk client's: one reading of requests' exceptions.
from plugin.helpdesks.zendesk import (
    TRANSPORT_FAILURES,
    AccountSessions,
    CallBudget,
    transport_failure,
)
from plugin.models import Customer, Installation, Order
from plugin.observability import count_upstream_call

SOURCE = "shopify"
API_VERSION = "2026-10"
EXTERNAL_ID_PREFIX = "shopify:"
# By Shopify's cost rules a customer lookup with 10 orders requests roughly 90 points, of a
# bucket that refills at 100 a second on the smallest plan: 60 a minute leaves the store's
# other apps room. The bucket's own state (`extensions.cost`) pauses calls sooner if need be.
DEFAULT_CALLS_PER_MINUTE = 60
RECENT_ORDERS = 10
MAX_PAGE_SIZE = 250  # Shopify's largest `first:`
# A 429 that says nothing about when to come back: the bucket refills within seconds.
DEFAULT_RETRY_AFTER_SECONDS = 2.0
# A wait worked out from the bucket's state, not asked for: bounded against odd figures.
MAX_THROTTLE_WAIT_SECONDS = 60.0
MAX_ACCESS_TOKEN = 255
MAX_API_BASE_URL = 500
MAX_ERROR_MESSAGE = 200
REQUIRED_SCOPES = ("read_customers", "read_orders")
ALL_ORDERS_SCOPE = "read_all_orders"

# The connection check's steps; names, not secrets.
CHECK_SHOP = "Shop reachable"
CHECK_TOKEN = "Access token valid"  # noqa: S105
CHECK_SCOPES = "Access scopes granted"
CHECK_CURRENCY = "Currency matches"

_SHOP = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\.myshopify\.com")
_GID = re.compile(r"gid://shopify/(?P<kind>[A-Za-z]+)/(?P<id>[0-9]{1,30})")
_CURRENCY = re.compile(r"[A-Z]{3}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

CUSTOMER_QUERY = """\
query RegularsCustomerByEmail($query: String!, $orders: Int!) {
  customers(first: 1, query: $query) {
    nodes {
      id
      displayName
      createdAt
      defaultEmailAddress { emailAddress }
      defaultPhoneNumber { phoneNumber }
      numberOfOrders
      amountSpent { amount currencyCode }
      orders(first: $orders, sortKey: PROCESSED_AT, reverse: true) {
        nodes {
          id
          name
          processedAt
          cancelledAt
          test
          discountCodes
          totalPriceSet { shopMoney { amount currencyCode } }
          lineItems(first: 1) {
            nodes { product { productType category { name } } }
          }
        }
      }
    }
  }
}
"""

CHECK_QUERY = """\
query RegularsConnectionCheck {
  shop { name currencyCode }
  currentAppInstallation { accessScopes { handle } }
}
"""

logger = logging.getLogger(__name__)


# --- What Shopify says ------------------------------------------------------------------------


@dataclass(frozen=True)
class ShopifyOrder:
    """One order as Shopify has it; amounts in cents of the shop's currency."""

    id: str  # the numeric id in gid://shopify/Order/<id>
    name: str  # what the merchant and customer see, such as #1001
    placed_at: datetime  # processedAt, naive UTC
    amount_cents: int
    currency: str
    discount_codes: tuple[str, ...] = ()
    category: str | None = None
    test: bool = False
    cancelled: bool = False


@dataclass(frozen=True)
class ShopifyCustomer:
    """A Shopify customer with Shopify's lifetime figures and their most recent orders."""

    id: str  # the numeric id in gid://shopify/Customer/<id>
    name: str
    email: str | None
    phone: str | None
    created_at: datetime
    number_of_orders: int
    amount_spent_cents: int
    currency: str
    orders: tuple[ShopifyOrder, ...] = ()


@dataclass(frozen=True)
class ShopStatus:
    """What the connection check learns: the shop's name, currency and the token's scopes."""

    name: str
    currency: str
    scopes: frozenset[str]


class ShopifyError(HelpdeskError):
    """A Shopify call that failed in transit, with an error status, or with a GraphQL error.

    A HelpdeskError, so callers and the upstream cache treat a Shopify failure as they treat a
    helpdesk's. `status` is the HTTP status of an error answer; `transport` says how a call
    with no answer failed; `code` is the GraphQL error code (THROTTLED, ACCESS_DENIED, ...);
    `retry_after` is the wait Shopify asked for.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        transport: Transport | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message,
            retryable=retryable,
            status=status,
            transport=transport,
            retry_after=retry_after,
        )
        self.code = code


class ShopifySyncError(ValueError):
    """Shopify sent a customer or order the store refuses; the message names which and why."""


# --- The client -------------------------------------------------------------------------------


def shop_domain(value: str) -> str:
    """Return the store's myshopify.com domain from `acme`, `acme.myshopify.com` or its URL.

    Raises RegistrationError (a ValueError) for anything else.
    """
    text = value.strip().lower().removeprefix("https://").removesuffix("/")
    domain = text if "." in text else f"{text}.myshopify.com"
    if not _SHOP.fullmatch(domain):
        raise RegistrationError(
            "shop must be the store's myshopify.com address, such as acme.myshopify.com (or "
            "acme): lowercase letters, digits and hyphens"
        )
    return domain


def base_url_for(shop: str, api_base_url: str | None = None) -> str:
    """Return where to call a store: its override (a proxy, a local fake), else its domain."""
    return api_base_url.rstrip("/") if api_base_url else f"https://{shop_domain(shop)}"


class _AccessToken(AuthBase):
    """Send the token in Shopify's header; as a requests auth it keeps ~/.netrc out."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        request.headers["X-Shopify-Access-Token"] = self._token
        return request

    def __repr__(self) -> str:
        return "<_AccessToken>"


class ShopifyClient:
    """Read customers and their orders from one store's GraphQL Admin API."""

    def __init__(
        self,
        *,
        session: requests.Session,
        shop: str,
        access_token: str,
        budget: CallBudget,
        timeout: float = 5.0,
        api_base_url: str | None = None,
    ) -> None:
        self.shop = shop_domain(shop)
        self._url = f"{base_url_for(self.shop, api_base_url)}/admin/api/{API_VERSION}/graphql.json"
        self._session = session
        self._auth = _AccessToken(access_token)
        self._budget = budget
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"<ShopifyClient {self.shop}>"

    def customer_by_email(
        self, email: str, *, recent_orders: int = RECENT_ORDERS
    ) -> ShopifyCustomer | None:
        """Return the store's customer with this email and their latest orders, or None.

        Raises ValueError for an email or order count that cannot be asked for, ShopifyError
        when Shopify does not answer usefully.
        """
        wanted = normalize_email(email)
        if len(wanted) > MAX_EMAIL or not _EMAIL.fullmatch(wanted):
            raise ValueError("not an email address")
        if not 1 <= recent_orders <= MAX_PAGE_SIZE:
            raise ValueError(f"recent_orders must be 1 to {MAX_PAGE_SIZE}")
        data = self._query(
            "the customer lookup",
            CUSTOMER_QUERY,
            {"query": _search_phrase("email", wanted), "orders": recent_orders},
        )
        nodes = _nodes(_field(data, "customers"), "customers")
        if not nodes:
            return None
        customer = _map_customer(nodes[0])
        if customer.email != wanted:
            # Search is by terms, not equality: another customer is not this one.
            return None
        return customer

    def shop_status(self) -> ShopStatus:
        """Return the shop's name and currency and the token's scopes: proof the token works."""
        data = self._query("the connection check", CHECK_QUERY, {})
        try:
            shop = _field(data, "shop")
            installation = _field(data, "currentAppInstallation")
            scopes = frozenset(
                str(scope["handle"]) for scope in installation.get("accessScopes") or []
            )
            return ShopStatus(
                name=str(shop["name"]),
                currency=_currency(shop["currencyCode"]),
                scopes=scopes,
            )
        except (KeyError, TypeError, ValueError):
            raise _unreadable("shop") from None

    def _query(self, what: str, query: str, variables: Mapping[str, object]) -> dict[str, Any]:
        """Run one GraphQL query and return its `data`, or raise ShopifyError saying why not."""
        if not self._budget.try_acquire():
            wait = self._budget.seconds_until_available()
            raise ShopifyError(
                f"the Shopify call budget of {self.shop} is spent; {what} was not sent, calls "
                f"resume in {wait:.0f} s",
                retryable=True,
                retry_after=wait,
            )
        response = self._send(what, {"query": query, "variables": dict(variables)})
        payload = _json_object(response)
        self._raise_for_status(response, payload, what)
        if payload is None:
            raise ShopifyError(
                f"Shopify answered {what} with a body that is not a JSON object", retryable=False
            )
        self._raise_for_errors(payload, what)
        self._observe_cost(payload)
        data = payload.get("data")
        if not isinstance(data, dict):
            raise _unreadable("answer")
        return data

    def _send(self, what: str, body: Mapping[str, object]) -> requests.Response:
        try:
            response = self._session.post(
                self._url, json=body, auth=self._auth, timeout=self._timeout
            )
        except (InvalidURL, InvalidSchema, MissingSchema) as error:
            count_upstream_call("shopify", None)
            raise ShopifyError(
                f"the Shopify API URL for {self.shop} is malformed ({type(error).__name__})",
                retryable=False,
                transport="invalid_url",
            ) from error
        except requests.RequestException as error:
            count_upstream_call("shopify", None)
            transport = transport_failure(error)
            host = urlsplit(self._url).hostname or self.shop
            reason = TRANSPORT_FAILURES[transport].format(host=host)
            raise ShopifyError(
                f"Shopify did not answer {what}: {reason} ({type(error).__name__})",
                retryable=True,
                transport=transport,
            ) from error
        count_upstream_call("shopify", response.status_code)
        return response

    def _raise_for_status(
        self, response: requests.Response, payload: Mapping[str, Any] | None, what: str
    ) -> None:
        status = response.status_code
        if status < 400:
            return
        if status == 429:
            wait = _retry_after(response.headers.get("Retry-After"), payload)
            self._pause(wait)
            raise ShopifyError(
                f"Shopify rate limit reached at {what} (429); calls paused for {wait:.0f} s",
                retryable=True,
                status=429,
                code=_first_code(payload),
                retry_after=wait,
            )
        reasons = {
            401: "refused the access token (401): it is wrong or was revoked",
            402: "says the shop is frozen for an unpaid bill (402)",
            403: "refused the access token permission (403)",
            404: f"has no Admin API {API_VERSION} at {self.shop} (404): check the shop address",
            423: "says the shop is locked (423)",
        }
        reason = reasons.get(status, f"answered with {status}")
        raise ShopifyError(f"Shopify {reason}, at {what}", retryable=status >= 500, status=status)

    def _raise_for_errors(self, payload: Mapping[str, Any], what: str) -> None:
        errors = payload.get("errors")
        if not errors:
            return
        code = _first_code(payload)
        if code == "THROTTLED":
            wait = _throttle_wait(payload) or DEFAULT_RETRY_AFTER_SECONDS
            self._pause(wait)
            raise ShopifyError(
                f"Shopify throttled {what} (THROTTLED); calls paused for {wait:.0f} s",
                retryable=True,
                code=code,
                retry_after=wait,
            )
        message = _first_message(errors)
        if code == "ACCESS_DENIED":
            raise ShopifyError(
                f"the Shopify access token lacks a scope {what} needs (ACCESS_DENIED): {message}",
                retryable=False,
                code=code,
            )
        raise ShopifyError(
            f"Shopify refused {what} ({code or 'GraphQL error'}): {message}",
            retryable=code == "INTERNAL_SERVER_ERROR",
            code=code,
        )

    def _observe_cost(self, payload: Mapping[str, Any]) -> None:
        """Pause the budget when Shopify's bucket could not hold another query like this one."""
        wait = _throttle_wait(payload)
        if wait:
            self._pause(wait)

    def _pause(self, seconds: float) -> None:
        self._budget.pause_for(seconds)
        logger.warning("Shopify rate limit at %s: pausing calls for %.1f s", self.shop, seconds)


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _search_phrase(name: str, value: str) -> str:
    """Quote a search value, escaping what Shopify's search syntax treats as special."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}:"{escaped}"'


def _retry_after(header: str | None, payload: Mapping[str, Any] | None) -> float:
    try:
        seconds = float(header) if header is not None else math.nan
    except ValueError:
        seconds = math.nan  # an HTTP date or garbage: fall back on the bucket's state
    if not math.isfinite(seconds):
        return _throttle_wait(payload) or DEFAULT_RETRY_AFTER_SECONDS
    return max(0.0, seconds)


def _throttle_wait(payload: Mapping[str, Any] | None) -> float | None:
    """Seconds until the bucket holds the query's requested cost, from `extensions.cost`."""
    cost = _object_or_empty(_object_or_empty(payload).get("extensions")).get("cost")
    throttle = _object_or_empty(cost).get("throttleStatus")
    requested = _number(_object_or_empty(cost).get("requestedQueryCost"))
    available = _number(_object_or_empty(throttle).get("currentlyAvailable"))
    restore = _number(_object_or_empty(throttle).get("restoreRate"))
    if requested is None or available is None or restore is None or restore <= 0:
        return None
    if requested <= available:
        return None
    return min(MAX_THROTTLE_WAIT_SECONDS, (requested - available) / restore)


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _object_or_empty(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _first_code(payload: Mapping[str, Any] | None) -> str | None:
    errors = _object_or_empty(payload).get("errors")
    for error in errors if isinstance(errors, list) else ():
        code = _object_or_empty(_object_or_empty(error).get("extensions")).get("code")
        if isinstance(code, str):
            return code
    return None


def _first_message(errors: object) -> str:
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        message = str(errors[0].get("message") or "no message")
    elif isinstance(errors, str):
        message = errors
    else:
        message = "no message"
    return message[:MAX_ERROR_MESSAGE]


def _unreadable(kind: str) -> ShopifyError:
    return ShopifyError(f"Shopify sent a {kind} this client cannot read", retryable=False)


def _field(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise _unreadable(key)
    return value


def _nodes(connection: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    nodes = connection.get("nodes")
    if not isinstance(nodes, list) or not all(isinstance(node, dict) for node in nodes):
        raise _unreadable(kind)
    return nodes


def _map_customer(raw: Mapping[str, Any]) -> ShopifyCustomer:
    try:
        email = (raw.get("defaultEmailAddress") or {}).get("emailAddress")
        phone = (raw.get("defaultPhoneNumber") or {}).get("phoneNumber")
        spent = raw["amountSpent"]
        orders = tuple(_map_order(node) for node in _nodes(raw["orders"], "orders"))
        return ShopifyCustomer(
            id=_numeric_id(raw["id"], "Customer"),
            name=str(raw.get("displayName") or "").strip(),
            email=normalize_email(email) if isinstance(email, str) and email.strip() else None,
            phone=phone.strip() if isinstance(phone, str) and phone.strip() else None,
            created_at=_timestamp(raw["createdAt"]),
            number_of_orders=_count(raw["numberOfOrders"]),
            amount_spent_cents=_cents(spent["amount"]),
            currency=_currency(spent["currencyCode"]),
            orders=orders,
        )
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError):
        raise _unreadable("customer") from None


def _map_order(raw: Mapping[str, Any]) -> ShopifyOrder:
    try:
        money = raw["totalPriceSet"]["shopMoney"]
        codes = raw.get("discountCodes") or []
        if not isinstance(codes, list):
            raise TypeError("discountCodes is not a list")
        return ShopifyOrder(
            id=_numeric_id(raw["id"], "Order"),
            name=str(raw.get("name") or ""),
            placed_at=_timestamp(raw["processedAt"]),
            amount_cents=_cents(money["amount"]),
            currency=_currency(money["currencyCode"]),
            discount_codes=tuple(str(code) for code in codes if str(code).strip()),
            category=_category(raw.get("lineItems") or {}),
            test=raw.get("test") is True,
            cancelled=raw.get("cancelledAt") is not None,
        )
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError):
        raise _unreadable("order") from None


def _category(line_items: Mapping[str, Any]) -> str | None:
    """The first line item's product type, else its Shopify taxonomy category."""
    for item in line_items.get("nodes") or ():
        product = item.get("product") or {}
        label = str(product.get("productType") or "").strip()
        label = label or str((product.get("category") or {}).get("name") or "").strip()
        if label:
            return label[:MAX_LABEL]
    return None


def _numeric_id(gid: object, kind: str) -> str:
    match = _GID.fullmatch(gid) if isinstance(gid, str) else None
    if match is None or match["kind"] != kind:
        raise ValueError(f"not a {kind} id")
    return match["id"]


def _timestamp(value: object) -> datetime:
    """Parse Shopify's ISO 8601 DateTime into naive UTC, as the service stores times."""
    if not isinstance(value, str):
        raise TypeError("timestamp is not a string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _count(value: object) -> int:
    """Read an UnsignedInt64, which Shopify sends as a string of digits."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise ValueError("not a count")


def _cents(amount: object) -> int:
    """Read a Decimal money amount ("12.50") as whole cents, rounding half up."""
    if not isinstance(amount, str | int | float) or isinstance(amount, bool):
        raise TypeError("amount is not a number")
    value = Decimal(str(amount))
    if not value.is_finite() or value < 0:
        raise ValueError("amount is not a finite, non-negative number")
    return int((value * 100).to_integral_value(rounding=ROUND_HALF_UP))


def _currency(value: object) -> str:
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise ValueError("not a currency code")
    return value


# --- Per-installation configuration -----------------------------------------------------------


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
        )
    )


def _failed_check(error: ShopifyError, *, host: str, shop: str, timeout: float) -> ConnectionReport:
    unreachable = error.transport is not None or error.status == 404
    if unreachable:
        first = Check(CHECK_SHOP, CheckStatus.FAILED, _unreachable(error, host, shop, timeout))
        rest = [CHECK_TOKEN, CHECK_SCOPES, CHECK_CURRENCY]
        reason = "skipped: the shop is not reachable"
    else:
        first = Check(CHECK_SHOP, CheckStatus.OK, f"{host} answered")
        rest = [CHECK_SCOPES, CHECK_CURRENCY]
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


# --- Storing what Shopify says ----------------------------------------------------------------


def external_id(shopify_id: str) -> str:
    """The external id a Shopify customer or order is stored under: shopify:<numeric id>."""
    return f"{EXTERNAL_ID_PREFIX}{shopify_id}"


def sync_customer(
    session: Session,
    installation: Installation,
    customer: ShopifyCustomer | None,
    *,
    now: datetime,
) -> int | None:
    """Store a Shopify customer, their orders and Shopify's figures; return the customer id.

    None in, None out, so a lookup that found nobody can be passed straight in. Storing the
    same answer again changes nothing. Raises ShopifySyncError when Shopify's data is refused.
    The caller commits.
    """
    if customer is None:
        return None
    record = _customer_record(customer, _merge_target(session, installation.id, customer))
    store_customers(session, installation.id, [record], now=now)
    stored = session.scalars(
        sa.select(Customer).where(
            Customer.installation_id == installation.id,
            Customer.external_id == record.external_id,
        )
    ).one()
    real = [order for order in customer.orders if not order.test]
    result = store_orders(
        session,
        installation.id,
        [_order_record(order, record.external_id) for order in real if not order.cancelled],
        source=SOURCE,
        now=now,
    )
    if result.problems:
        raise ShopifySyncError(f"Shopify order could not be stored: {result.problems[0][1]}")
    _forget_cancelled(
        session, installation.id, [order for order in real if order.cancelled], now=now
    )
    customers.record_facts(
        session,
        customer=stored,
        facts={
            "order_count": customer.number_of_orders,
            "total_spend_cents": customer.amount_spent_cents,
            "spend_currency": customer.currency,
            "shopify_customer_id": customer.id,
        },
        source=SOURCE,
        now=now,
    )
    return stored.id


def _merge_target(
    session: Session, installation_id: int, customer: ShopifyCustomer
) -> Customer | None:
    """The stored customer this one is: by Shopify id, else the oldest by email, then phone."""
    conditions: list[sa.ColumnElement[bool]] = [Customer.external_id == external_id(customer.id)]
    if customer.email:
        conditions.append(Customer.email == customer.email)
    if customer.phone:
        conditions.append(Customer.phone == normalize_phone(customer.phone))
    for condition in conditions:
        found = session.scalars(
            sa.select(Customer)
            .where(Customer.installation_id == installation_id, condition)
            .order_by(Customer.id)
            .limit(1)
        ).first()
        if found is not None:
            return found
    return None


def _customer_record(customer: ShopifyCustomer, target: Customer | None) -> CustomerRecord:
    shopify_owns = target is None or not target.external_id or _is_shopify(target.external_id)
    name = (customer.name or customer.email or f"Shopify customer {customer.id}")[:MAX_NAME]
    fields: dict[str, object] = {
        "customer_id": (target.external_id if target else None) or external_id(customer.id),
        "name": name,
        "email": customer.email,
        "phone": customer.phone,
        "customer_since": customer.created_at.date().isoformat(),
    }
    if not shopify_owns:
        assert target is not None  # a target owned by other data
        # The company's own data names this customer: Shopify only fills what it leaves empty.
        fields["name"] = target.name
        for name_of_field, current in (
            ("email", target.email),
            ("phone", target.phone),
            ("customer_since", target.customer_since),
        ):
            if current is not None:
                fields[name_of_field] = None
    try:
        return customer_record(fields)
    except FieldProblem as problem:
        if problem.field != "phone":
            raise ShopifySyncError(f"Shopify customer {customer.id}: {problem}") from None
    # A phone number callers cannot be matched by is not worth losing the customer over.
    return customer_record({**fields, "phone": None})


def _order_record(order: ShopifyOrder, customer_external_id: str) -> OrderRecord:
    try:
        return order_record(
            {
                "order_id": external_id(order.id),
                "customer_id": customer_external_id,
                "placed_at": order.placed_at.isoformat(),
                "amount_cents": order.amount_cents,
                "discount_code": _discount_code(order.discount_codes),
                "category": order.category,
            }
        )
    except FieldProblem as problem:
        raise ShopifySyncError(f"Shopify order {order.name or order.id}: {problem}") from None


def _discount_code(codes: Sequence[str]) -> str | None:
    """All the codes an order used that fit the column, whole, separated by commas."""
    kept: list[str] = []
    for code in (code.strip() for code in codes):
        if len(", ".join([*kept, code])) > MAX_CODE:
            break
        kept.append(code)
    if not kept and codes:
        return codes[0].strip()[:MAX_CODE]
    return ", ".join(kept) or None


def _forget_cancelled(
    session: Session, installation_id: int, cancelled: Sequence[ShopifyOrder], *, now: datetime
) -> None:
    """Remove stored copies of orders cancelled since they were stored, and recount."""
    if not cancelled:
        return
    stored = sa.and_(
        Order.installation_id == installation_id,
        Order.source == SOURCE,
        Order.external_id.in_([external_id(order.id) for order in cancelled]),
    )
    owners = set(session.scalars(sa.select(Order.customer_id).where(stored)))
    if not owners:
        return
    session.execute(sa.delete(Order).where(stored))
    refresh_order_facts(session, installation_id=installation_id, now=now, customer_ids=owners)


def _is_shopify(value: str) -> bool:
    return value.startswith(EXTERNAL_ID_PREFIX)
