"""Shopify's GraphQL Admin API: a store's customers with their lifetime figures and recent
orders, and the shop's name, currency and granted scopes for the connection check.

`ShopifyClient.customer_by_email` reads who a customer is, Shopify's lifetime order count and
amount spent, and their recent orders with dates, amounts, discount codes and a category.
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
- Where an order stands: `displayFinancialStatus` and `displayFulfillmentStatus` (enums
  OrderDisplayFinancialStatus, OrderDisplayFulfillmentStatus:
  shopify.dev/docs/api/admin-graphql/latest/enums/OrderDisplayFulfillmentStatus),
  `subtotalLineItemsQuantity` (the line items' quantities summed) and `fulfillments(first:)`,
  a list of Fulfillment whose `trackingInfo(first:)` has the carrier's `url`
  (shopify.dev/docs/api/admin-graphql/2024-07/objects/Fulfillment; needs read_orders).
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

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import requests

from plugin.customers.records import (
    MAX_EMAIL,
    MAX_LABEL,
    MAX_URL,
    FieldProblem,
    normalize_email,
    tracking_url,
)
from plugin.helpdesks.http import ApiCaller, CallBudget, HeaderAuth, UpstreamApi, utc_timestamp
from plugin.helpdesks.installations import RegistrationError
from plugin.helpdesks.interface import HelpdeskError, Transport

API_VERSION = "2026-10"
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
MAX_ERROR_MESSAGE = 200

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
          displayFinancialStatus
          displayFulfillmentStatus
          subtotalLineItemsQuantity
          fulfillments(first: 1) { trackingInfo(first: 1) { url } }
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
    # In the vocabularies of plugin/customers/records.py; None when Shopify does not say.
    status: str | None = None
    fulfillment_status: str | None = None
    tracking_url: str | None = None
    item_count: int | None = None


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


SHOPIFY_API = UpstreamApi(name="Shopify", platform="shopify", error=ShopifyError)


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
        self._http = ApiCaller(
            SHOPIFY_API,
            session=session,
            auth=HeaderAuth("X-Shopify-Access-Token", access_token),
            timeout=timeout,
            budget=budget,
            account=self.shop,
            error_for_status=self._error_for_status,
        )

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
        data = self.graphql(
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
        data = self.graphql("the connection check", CHECK_QUERY, {})
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

    def graphql(self, what: str, query: str, variables: Mapping[str, object]) -> dict[str, Any]:
        """Run one GraphQL query or mutation and return its `data` (a mutation's userErrors
        included), or raise ShopifyError saying why not; `what` names it in messages.
        """
        body = {"query": query, "variables": dict(variables)}
        response = self._http.send("POST", self._url, what=what, json=body)
        payload = _json_object(response)
        if response.status_code == 429:
            # Without a Retry-After, the bucket's state in the answer tells how long to wait.
            unsaid = _throttle_wait(payload) or DEFAULT_RETRY_AFTER_SECONDS
            wait = self._http.rate_limit_wait(response, unsaid=unsaid)
            raise ShopifyError(
                f"Shopify rate limit reached at {what} (429); calls paused for {wait:.0f} s",
                retryable=True,
                status=429,
                code=_first_code(payload),
                retry_after=wait,
            )
        self._http.raise_for_status(response, what)
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

    def _error_for_status(self, status: int, what: str) -> ShopifyError:
        reasons = {
            401: "refused the access token (401): it is wrong or was revoked",
            402: "says the shop is frozen for an unpaid bill (402)",
            403: "refused the access token permission (403)",
            404: f"has no Admin API {API_VERSION} at {self.shop} (404): check the shop address",
            423: "says the shop is locked (423)",
        }
        reason = reasons.get(status, f"answered with {status}")
        return ShopifyError(f"Shopify {reason}, at {what}", retryable=status >= 500, status=status)

    def _raise_for_errors(self, payload: Mapping[str, Any], what: str) -> None:
        errors = payload.get("errors")
        if not errors:
            return
        code = _first_code(payload)
        if code == "THROTTLED":
            wait = _throttle_wait(payload) or DEFAULT_RETRY_AFTER_SECONDS
            self._http.pause(wait)
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
            self._http.pause(wait)


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
            created_at=utc_timestamp(raw["createdAt"]),
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
            placed_at=utc_timestamp(raw["processedAt"]),
            amount_cents=_cents(money["amount"]),
            currency=_currency(money["currencyCode"]),
            discount_codes=tuple(str(code) for code in codes if str(code).strip()),
            category=_category(raw.get("lineItems") or {}),
            test=raw.get("test") is True,
            cancelled=raw.get("cancelledAt") is not None,
            status=_FINANCIAL_STATUS.get(str(raw.get("displayFinancialStatus"))),
            fulfillment_status=_FULFILLMENT_STATUS.get(str(raw.get("displayFulfillmentStatus"))),
            tracking_url=_tracking_url(raw.get("fulfillments")),
            item_count=_item_count(raw.get("subtotalLineItemsQuantity")),
        )
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError):
        raise _unreadable("order") from None


# Order.displayFinancialStatus and .displayFulfillmentStatus (enums OrderDisplayFinancialStatus
# and OrderDisplayFulfillmentStatus, shopify.dev/docs/api/admin-graphql/latest/enums/...) in
# the records' vocabularies; a value not listed (EXPIRED, a new one) is shown as unknown.
_FINANCIAL_STATUS = {
    name: name.lower()
    for name in (
        *("PENDING", "AUTHORIZED", "PAID", "PARTIALLY_PAID"),
        *("PARTIALLY_REFUNDED", "REFUNDED", "VOIDED"),
    )
}
_FULFILLMENT_STATUS = {
    "FULFILLED": "fulfilled",
    "PARTIALLY_FULFILLED": "partial",
    "RESTOCKED": "returned",
    **{
        name: "unfulfilled"
        for name in (
            *("UNFULFILLED", "OPEN", "IN_PROGRESS", "PENDING_FULFILLMENT"),
            *("ON_HOLD", "SCHEDULED", "REQUEST_DECLINED"),
        )
    },
}


def _tracking_url(fulfillments: object) -> str | None:
    """The first fulfillment's first tracking link (Fulfillment.trackingInfo.url), if http(s)."""
    for fulfillment in fulfillments if isinstance(fulfillments, list) else ():
        for info in (fulfillment or {}).get("trackingInfo") or ():
            url = (info or {}).get("url")
            if isinstance(url, str) and url.strip():
                try:
                    return tracking_url(url.strip()[:MAX_URL])
                except FieldProblem:
                    return None
    return None


def _item_count(value: object) -> int | None:
    """Order.subtotalLineItemsQuantity: the quantities of the line items, summed."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


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
