"""The Shopify connector: its client against Shopify's documented answer shapes, storing what it
reads on SQLite and PostgreSQL, the per-installation connection and its check, and the CLI.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests
import responses
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner
from responses import matchers
from sqlalchemy.orm import Session

from plugin import db
from plugin.customers.csv_import import import_csv
from plugin.customers.shopify import sync_customer
from plugin.customers.shopify_client import (
    API_VERSION,
    CHECK_QUERY,
    CUSTOMER_QUERY,
    ShopifyClient,
    ShopifyCustomer,
    ShopifyError,
    ShopifyOrder,
    shop_domain,
)
from plugin.customers.shopify_connection import (
    check_shopify,
    connect_shopify,
    disconnect_shopify,
    reencrypt_shopify_credentials,
    shopify_client_for,
    shopify_connection,
)
from plugin.helpdesks.credentials import (
    EXTENSION_KEY,
    CredentialsError,
    CredentialsVault,
    generate_key,
)
from plugin.helpdesks.http import AccountSessions, CallBudget, new_session
from plugin.helpdesks.installations import CheckStatus, RegistrationError
from plugin.models import Customer, CustomerFact, Installation, Order
from tests.clock import FakeClock

SHOP = "regulars-test.myshopify.com"
URL = f"https://{SHOP}/admin/api/{API_VERSION}/graphql.json"
TOKEN = "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"
EMAIL = "priya@example.com"
NOW = datetime(2026, 11, 24, 12, 0)
LATER = datetime(2026, 11, 25, 9, 0)


# --- Shopify's answers, shaped as the GraphQL Admin API documents them -----------------------


def cost(requested: int = 92, available: float = 1908.0, restore: float = 100.0) -> dict[str, Any]:
    """The `extensions.cost` every GraphQL Admin API answer carries."""
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": requested - 40,
            "throttleStatus": {
                "maximumAvailable": 2000.0,
                "currentlyAvailable": available,
                "restoreRate": restore,
            },
        }
    }


def order_node(
    number: int,
    *,
    processed_at: str,
    amount: str,
    codes: list[str] | None = None,
    product: dict[str, Any] | None = None,
    **changes: Any,
) -> dict[str, Any]:
    node: dict[str, Any] = {
        "id": f"gid://shopify/Order/{5_000_000 + number}",
        "name": f"#{1000 + number}",
        "processedAt": processed_at,
        "cancelledAt": None,
        "test": False,
        "discountCodes": codes or [],
        "totalPriceSet": {"shopMoney": {"amount": amount, "currencyCode": "USD"}},
        "lineItems": {"nodes": [{"product": product}]},
    }
    node.update(changes)
    return node


TEA = {"productType": "Tea", "category": {"name": "Tea & Infusions"}}
BEANS = {"productType": "", "category": {"name": "Coffee"}}
ORDERS = [
    order_node(
        3,
        processed_at="2026-11-20T09:15:00-05:00",
        amount="80.50",
        product=TEA,
        codes=["WELCOME10", "FREESHIP"],
    ),
    order_node(2, processed_at="2026-10-01T12:00:00Z", amount="45.00", product=BEANS),
    order_node(1, processed_at="2025-03-02T08:00:00Z", amount="19.999", codes=["SPRING"]),
]


def customer_node(**changes: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "id": "gid://shopify/Customer/207119551",
        "displayName": "Priya Raman",
        "createdAt": "2021-04-05T10:00:00Z",
        "defaultEmailAddress": {"emailAddress": "Priya@Example.com"},
        "defaultPhoneNumber": {"phoneNumber": "+15555550101"},
        "numberOfOrders": "14",
        "amountSpent": {"amount": "1234.56", "currencyCode": "USD"},
        "orders": {"nodes": ORDERS},
    }
    node.update(changes)
    return node


def customers_answer(*nodes: dict[str, Any], **extensions: Any) -> dict[str, Any]:
    return {"data": {"customers": {"nodes": list(nodes)}}, "extensions": cost(**extensions)}


def lookup_match(email: str = EMAIL, orders: int = 10) -> list[Any]:
    """Match the lookup by its token header and exact GraphQL body."""
    return [
        matchers.header_matcher(
            {"X-Shopify-Access-Token": TOKEN, "Content-Type": "application/json"}
        ),
        matchers.json_params_matcher(
            {
                "query": CUSTOMER_QUERY,
                "variables": {"query": f'email:"{email}"', "orders": orders},
            }
        ),
    ]


def check_answer(
    *, currency: str = "USD", scopes: tuple[str, ...] = ("read_customers", "read_orders")
) -> dict[str, Any]:
    return {
        "data": {
            "shop": {"name": "Regulars Test Tea", "currencyCode": currency},
            "currentAppInstallation": {"accessScopes": [{"handle": s} for s in scopes]},
        },
        "extensions": cost(requested=2),
    }


@pytest.fixture
def budget(clock: FakeClock) -> CallBudget:
    return CallBudget(calls_per_minute=60, clock=clock)


@pytest.fixture
def client(budget: CallBudget) -> Iterator[ShopifyClient]:
    with new_session() as session:
        yield ShopifyClient(
            session=session, shop=SHOP, access_token=TOKEN, budget=budget, timeout=2.0
        )


# --- The client -------------------------------------------------------------------------------


def test_a_customer_is_found_by_email_with_shopifys_figures_and_recent_orders(
    client: ShopifyClient, rsps: responses.RequestsMock
) -> None:
    rsps.post(URL, json=customers_answer(customer_node()), match=lookup_match())

    customer = client.customer_by_email(" Priya@Example.com ")

    assert customer == ShopifyCustomer(
        id="207119551",
        name="Priya Raman",
        email=EMAIL,
        phone="+15555550101",
        created_at=datetime(2021, 4, 5, 10, 0),
        number_of_orders=14,
        amount_spent_cents=123456,
        currency="USD",
        orders=(
            ShopifyOrder(
                id="5000003",
                name="#1003",
                placed_at=datetime(2026, 11, 20, 14, 15),  # -05:00 as naive UTC
                amount_cents=8050,
                currency="USD",
                discount_codes=("WELCOME10", "FREESHIP"),
                category="Tea",
            ),
            ShopifyOrder(
                id="5000002",
                name="#1002",
                placed_at=datetime(2026, 10, 1, 12, 0),
                amount_cents=4500,
                currency="USD",
                category="Coffee",  # no product type: the taxonomy category
            ),
            ShopifyOrder(
                id="5000001",
                name="#1001",
                placed_at=datetime(2025, 3, 2, 8, 0),
                amount_cents=2000,  # 19.999 rounds half up to whole cents
                currency="USD",
                discount_codes=("SPRING",),
                category=None,  # a custom line item has no product
            ),
        ),
    )


def test_no_customer_with_that_email_is_none(
    client: ShopifyClient, rsps: responses.RequestsMock
) -> None:
    rsps.post(URL, json=customers_answer(), match=lookup_match("nobody@example.com", 3))

    assert client.customer_by_email("nobody@example.com", recent_orders=3) is None


def test_a_search_hit_with_another_email_is_not_the_customer(
    client: ShopifyClient, rsps: responses.RequestsMock
) -> None:
    other = customer_node(defaultEmailAddress={"emailAddress": "priya.r@example.com"})
    rsps.post(URL, json=customers_answer(other), match=lookup_match())

    assert client.customer_by_email(EMAIL) is None


def test_the_search_value_is_quoted_and_escaped(
    client: ShopifyClient, rsps: responses.RequestsMock
) -> None:
    rsps.post(
        URL,
        json=customers_answer(),
        match=[
            matchers.json_params_matcher(
                {"variables": {"query": 'email:"a\\"b\\\\c@example.com"', "orders": 10}},
                strict_match=False,
            )
        ],
    )

    assert client.customer_by_email('a"b\\c@example.com') is None


@pytest.mark.parametrize(
    ("email", "orders"), [("not-an-email", 10), ("a b@example.com", 10), (EMAIL, 0), (EMAIL, 251)]
)
def test_unaskable_lookups_are_refused_before_any_call(
    client: ShopifyClient, email: str, orders: int
) -> None:
    with pytest.raises(ValueError, match=r"email|recent_orders"):
        client.customer_by_email(email, recent_orders=orders)


@pytest.mark.parametrize(
    ("status", "retryable", "words"),
    [
        (401, False, "refused the access token (401)"),
        (402, False, "frozen"),
        (403, False, "(403)"),
        (404, False, f"no Admin API {API_VERSION} at {SHOP} (404)"),
        (423, False, "locked (423)"),
        (500, True, "answered with 500"),
        (503, True, "answered with 503"),
    ],
)
def test_error_statuses_say_what_failed_and_whether_to_retry(
    client: ShopifyClient,
    rsps: responses.RequestsMock,
    status: int,
    retryable: bool,
    words: str,
) -> None:
    rsps.post(URL, status=status, json={"errors": "[API] Invalid API key or access token"})

    with pytest.raises(ShopifyError) as raised:
        client.customer_by_email(EMAIL)

    assert words in str(raised.value)
    assert (raised.value.status, raised.value.retryable) == (status, retryable)
    assert TOKEN not in str(raised.value)


def test_429_pauses_the_store_for_retry_after_without_sleeping(
    client: ShopifyClient,
    rsps: responses.RequestsMock,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rsps.post(URL, status=429, headers={"Retry-After": "4.0"}, json={"errors": "Throttled"})

    with pytest.raises(ShopifyError) as raised:
        client.customer_by_email(EMAIL)
    assert (raised.value.status, raised.value.retryable, raised.value.retry_after) == (
        429,
        True,
        4.0,
    )

    # Paused: the next lookup is refused here, spending nothing at Shopify.
    clock.advance(3.9)
    with pytest.raises(ShopifyError, match=r"budget .* is spent") as refused:
        client.customer_by_email(EMAIL)
    assert refused.value.retryable
    clock.advance(0.1)
    rsps.post(URL, json=customers_answer(), match=lookup_match())
    assert client.customer_by_email(EMAIL) is None
    assert f"Shopify rate limit at {SHOP}: pausing calls for 4.0 s" in caplog.text
    assert TOKEN not in caplog.text


def test_429_without_retry_after_waits_for_the_bucket(
    client: ShopifyClient, rsps: responses.RequestsMock
) -> None:
    body = {
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": cost(requested=300, available=50.0, restore=100.0),
    }
    rsps.post(URL, status=429, json=body)

    with pytest.raises(ShopifyError) as raised:
        client.customer_by_email(EMAIL)

    assert raised.value.retry_after == pytest.approx(2.5)
    assert raised.value.code == "THROTTLED"


def test_a_throttled_graphql_answer_pauses_until_the_bucket_holds_the_query(
    client: ShopifyClient, rsps: responses.RequestsMock, budget: CallBudget
) -> None:
    # As Shopify answers a throttled query: HTTP 200, no data, the cost in the extensions.
    rsps.post(
        URL,
        json={
            "errors": [
                {
                    "message": "Throttled",
                    "extensions": {
                        "code": "THROTTLED",
                        "documentation": "https://shopify.dev/api/usage/rate-limits",
                    },
                }
            ],
            "extensions": {
                "cost": {
                    "requestedQueryCost": 752,
                    "actualQueryCost": None,
                    "throttleStatus": {
                        "maximumAvailable": 1000.0,
                        "currentlyAvailable": 666,
                        "restoreRate": 50.0,
                    },
                }
            },
        },
    )

    with pytest.raises(ShopifyError) as raised:
        client.customer_by_email(EMAIL)

    assert (raised.value.code, raised.value.retryable) == ("THROTTLED", True)
    assert raised.value.retry_after == pytest.approx(86 / 50)
    assert budget.seconds_until_available() == pytest.approx(86 / 50)


def test_a_nearly_empty_bucket_pauses_calls_before_shopify_throttles(
    client: ShopifyClient, rsps: responses.RequestsMock, budget: CallBudget
) -> None:
    answer = customers_answer(customer_node(), requested=92, available=42.0, restore=100.0)
    rsps.post(URL, json=answer, match=lookup_match())

    assert client.customer_by_email(EMAIL) is not None
    assert budget.seconds_until_available() == pytest.approx(0.5)


def test_a_timeout_is_retryable_and_says_so(
    client: ShopifyClient, rsps: responses.RequestsMock
) -> None:
    rsps.post(URL, body=requests.exceptions.ReadTimeout("read timed out"))

    with pytest.raises(ShopifyError) as raised:
        client.customer_by_email(EMAIL)

    assert (raised.value.transport, raised.value.retryable) == ("timeout", True)
    assert "Shopify did not answer the customer lookup: the call timed out" in str(raised.value)


@pytest.mark.parametrize("body", ["<html>Service Unavailable</html>", '["not", "an object"]'])
def test_an_answer_that_is_not_a_json_object_is_refused(
    client: ShopifyClient, rsps: responses.RequestsMock, body: str
) -> None:
    rsps.post(URL, body=body, content_type="application/json")

    with pytest.raises(ShopifyError, match="not a JSON object") as raised:
        client.customer_by_email(EMAIL)

    assert not raised.value.retryable


@pytest.mark.parametrize(
    "node",
    [
        customer_node(numberOfOrders="fourteen"),
        customer_node(id="gid://shopify/Order/1"),
        customer_node(amountSpent={"amount": "-1.00", "currencyCode": "USD"}),
        customer_node(orders={"nodes": [order_node(1, processed_at="soon", amount="1.00")]}),
        customer_node(orders=None),
    ],
)
def test_a_customer_this_client_cannot_read_is_refused(
    client: ShopifyClient, rsps: responses.RequestsMock, node: dict[str, Any]
) -> None:
    rsps.post(URL, json=customers_answer(node))

    with pytest.raises(ShopifyError, match="cannot read") as raised:
        client.customer_by_email(EMAIL)

    assert not raised.value.retryable


def test_access_denied_names_the_missing_scope_problem(
    client: ShopifyClient, rsps: responses.RequestsMock
) -> None:
    rsps.post(
        URL,
        json={
            "errors": [
                {
                    "message": "Access denied for customers field. Required access: "
                    "`read_customers` access scope.",
                    "path": ["customers"],
                    "extensions": {"code": "ACCESS_DENIED"},
                }
            ],
            "data": None,
            "extensions": cost(),
        },
    )

    with pytest.raises(ShopifyError, match=r"lacks a scope .*`read_customers`") as raised:
        client.customer_by_email(EMAIL)

    assert (raised.value.code, raised.value.retryable) == ("ACCESS_DENIED", False)


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        ({"message": "Internal error. Looks like something went wrong on our end."}, False),
        (
            {
                "message": "Internal error. Looks like something went wrong on our end.",
                "extensions": {"code": "INTERNAL_SERVER_ERROR"},
            },
            True,
        ),
        ({"message": "Field 'emailz' doesn't exist on type 'Customer'"}, False),
    ],
)
def test_other_graphql_errors_carry_shopifys_message(
    client: ShopifyClient, rsps: responses.RequestsMock, error: dict[str, Any], retryable: bool
) -> None:
    rsps.post(URL, json={"errors": [error], "extensions": cost()})

    with pytest.raises(ShopifyError) as raised:
        client.customer_by_email(EMAIL)

    assert error["message"] in str(raised.value)
    assert raised.value.retryable is retryable


def test_the_api_base_url_override_is_called_instead_of_the_shop(budget: CallBudget) -> None:
    fake = "http://127.0.0.1:8931/shopify"
    with responses.RequestsMock() as mock, new_session() as session:
        mock.post(f"{fake}/admin/api/{API_VERSION}/graphql.json", json=customers_answer())
        client = ShopifyClient(
            session=session, shop=SHOP, access_token=TOKEN, budget=budget, api_base_url=fake
        )
        assert client.customer_by_email(EMAIL) is None


@pytest.mark.parametrize(
    ("given", "domain"),
    [
        ("regulars-test", SHOP),
        (" Regulars-Test.myshopify.com ", SHOP),
        (f"https://{SHOP}/", SHOP),
        ("a1.myshopify.com", "a1.myshopify.com"),
    ],
)
def test_shop_domains_are_normalized(given: str, domain: str) -> None:
    assert shop_domain(given) == domain


@pytest.mark.parametrize(
    "given",
    ["", "acme.example.com", "acme.myshopify.com.evil.com", "-acme", "ac me", "acme_tea", "a/b"],
)
def test_other_shop_domains_are_refused(given: str) -> None:
    with pytest.raises(RegistrationError, match=r"myshopify\.com"):
        shop_domain(given)


def test_the_client_repr_names_the_shop_never_the_token(client: ShopifyClient) -> None:
    assert repr(client) == f"<ShopifyClient {SHOP}>"
    assert TOKEN not in repr(client.__dict__)


# --- Storing what Shopify says, on SQLite and PostgreSQL --------------------------------------


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


@pytest.fixture
def installation(session: Session) -> Installation:
    row = Installation(platform="zendesk", account="acme", display_name="Acme")
    session.add(row)
    session.commit()
    return row


def shopify_customer(*orders: ShopifyOrder, **changes: Any) -> ShopifyCustomer:
    values: dict[str, Any] = {
        "id": "207119551",
        "name": "Priya Raman",
        "email": EMAIL,
        "phone": "+15555550101",
        "created_at": datetime(2021, 4, 5, 10, 0),
        "number_of_orders": 14,
        "amount_spent_cents": 123456,
        "currency": "USD",
        "orders": orders,
    }
    values.update(changes)
    return ShopifyCustomer(**values)


def shopify_order(number: int, **changes: Any) -> ShopifyOrder:
    values: dict[str, Any] = {
        "id": str(5_000_000 + number),
        "name": f"#{1000 + number}",
        "placed_at": datetime(2026, 11, number, 9, 0),
        "amount_cents": 1000 * number,
        "currency": "USD",
    }
    values.update(changes)
    return ShopifyOrder(**values)


RECENT = (
    shopify_order(3, discount_codes=("WELCOME10", "FREESHIP"), category="Tea"),
    shopify_order(2, discount_codes=("SPRING",), category="Coffee"),
    shopify_order(1, category="Tea"),
)


def snapshot(session: Session) -> list[tuple[Any, ...]]:
    """Every stored row this connector writes, with its times."""
    session.expire_all()
    rows: list[tuple[Any, ...]] = []
    rows += session.execute(sa.select(Customer.__table__).order_by(Customer.id)).all()
    rows += session.execute(sa.select(Order.__table__).order_by(Order.id)).all()
    rows += session.execute(sa.select(CustomerFact.__table__).order_by(CustomerFact.id)).all()
    return rows


def facts_of(session: Session, customer_id: int | None, source: str) -> dict[str, Any]:
    return {
        fact.name: (fact.value, fact.fetched_at)
        for fact in session.scalars(
            sa.select(CustomerFact).where(
                CustomerFact.customer_id == customer_id, CustomerFact.source == source
            )
        )
    }


def test_sync_stores_the_customer_orders_and_shopifys_figures(
    session: Session, installation: Installation
) -> None:
    customer_id = sync_customer(session, installation, shopify_customer(*RECENT), now=NOW)
    session.commit()

    customer = session.get(Customer, customer_id)
    assert customer is not None
    assert (customer.external_id, customer.name, customer.email, customer.phone) == (
        "shopify:207119551",
        "Priya Raman",
        EMAIL,
        "+15555550101",
    )
    assert customer.customer_since == datetime(2021, 4, 5).date()
    orders = session.execute(
        sa.select(
            Order.external_id,
            Order.placed_at,
            Order.amount_cents,
            Order.discount_code,
            Order.category,
            Order.source,
        )
        .where(Order.customer_id == customer_id)
        .order_by(Order.placed_at.desc())
    ).all()
    assert [tuple(order) for order in orders] == [
        (
            "shopify:5000003",
            datetime(2026, 11, 3, 9),
            3000,
            "WELCOME10, FREESHIP",
            "Tea",
            "shopify",
        ),
        ("shopify:5000002", datetime(2026, 11, 2, 9), 2000, "SPRING", "Coffee", "shopify"),
        ("shopify:5000001", datetime(2026, 11, 1, 9), 1000, None, "Tea", "shopify"),
    ]
    assert facts_of(session, customer_id, "shopify") == {
        "order_count": (14, NOW),
        "total_spend_cents": (123456, NOW),
        "spend_currency": ("USD", NOW),
        "shopify_customer_id": ("207119551", NOW),
    }
    derived = facts_of(session, customer_id, "orders")
    assert derived["order_count"] == (3, NOW)
    assert derived["total_spend_cents"] == (6000, NOW)
    assert derived["top_categories"] == (["Tea", "Coffee"], NOW)


def test_a_second_sync_of_the_same_answer_changes_nothing(
    session: Session, installation: Installation
) -> None:
    first = sync_customer(session, installation, shopify_customer(*RECENT), now=NOW)
    session.commit()
    before = snapshot(session)

    second = sync_customer(session, installation, shopify_customer(*RECENT), now=LATER)
    session.commit()

    assert second == first
    assert snapshot(session) == before


def test_a_later_sync_refreshes_what_changed_and_when(
    session: Session, installation: Installation
) -> None:
    customer_id = sync_customer(session, installation, shopify_customer(*RECENT), now=NOW)
    newer = shopify_customer(
        shopify_order(4, amount_cents=2500), *RECENT, number_of_orders=15, amount_spent_cents=125956
    )

    assert sync_customer(session, installation, newer, now=LATER) == customer_id
    session.commit()

    shopify_facts = facts_of(session, customer_id, "shopify")
    assert shopify_facts["order_count"] == (15, LATER)
    assert shopify_facts["total_spend_cents"] == (125956, LATER)
    assert shopify_facts["spend_currency"] == ("USD", NOW)  # unchanged: as first fetched
    assert facts_of(session, customer_id, "orders")["order_count"] == (4, LATER)


def test_a_csv_customer_with_the_same_email_is_merged_not_duplicated(
    session: Session, installation: Installation
) -> None:
    csv = "customer_id,name,email,customer_since\nC-1,Priya R.,priya@example.com,2019-01-02\n"
    import_csv(session, installation.id, io.StringIO(csv), kind="customers", now=NOW)
    csv_customer = session.scalars(sa.select(Customer)).one()

    customer_id = sync_customer(session, installation, shopify_customer(*RECENT), now=NOW)
    session.commit()

    assert customer_id == csv_customer.id
    assert session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 1
    merged = session.get(Customer, customer_id)
    assert merged is not None
    # The company's own data wins; Shopify fills only what it left empty (the phone).
    assert (merged.external_id, merged.name, str(merged.customer_since)) == (
        "C-1",
        "Priya R.",
        "2019-01-02",
    )
    assert merged.phone == "+15555550101"
    owners = set(session.scalars(sa.select(Order.customer_id)))
    assert owners == {customer_id}
    assert facts_of(session, customer_id, "shopify")["shopify_customer_id"][0] == "207119551"

    # Importing the CSV again still finds one customer, with its Shopify orders.
    import_csv(session, installation.id, io.StringIO(csv), kind="customers", now=LATER)
    assert session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 1


def test_a_helpdesk_only_customer_is_claimed_by_phone(
    session: Session, installation: Installation
) -> None:
    known = Customer(installation_id=installation.id, name="Caller", phone="+15555550101")
    session.add(known)
    session.flush()

    customer_id = sync_customer(
        session, installation, shopify_customer(email="new@example.com"), now=NOW
    )

    assert customer_id == known.id
    assert (known.external_id, known.name, known.email) == (
        "shopify:207119551",
        "Priya Raman",
        "new@example.com",
    )


def test_test_orders_are_skipped_and_cancelled_orders_removed(
    session: Session, installation: Installation
) -> None:
    customer_id = sync_customer(session, installation, shopify_customer(*RECENT), now=NOW)
    assert customer_id is not None

    changed = shopify_customer(
        shopify_order(4, test=True),
        shopify_order(3, cancelled=True, discount_codes=("WELCOME10", "FREESHIP"), category="Tea"),
        *RECENT[1:],
    )
    sync_customer(session, installation, changed, now=LATER)
    session.commit()

    stored = set(session.scalars(sa.select(Order.external_id)))
    assert stored == {"shopify:5000002", "shopify:5000001"}
    assert facts_of(session, customer_id, "orders")["order_count"] == (2, LATER)


def test_nobody_found_is_nothing_stored(session: Session, installation: Installation) -> None:
    assert sync_customer(session, installation, None, now=NOW) is None
    assert snapshot(session) == []


def test_long_lists_of_discount_codes_keep_whole_codes(
    session: Session, installation: Installation
) -> None:
    codes = ("SUMMER-SALE-2026-TEA-LOVERS", "LOYALTY-GOLD-MEMBER-15", "FREESHIP-OVER-50")
    customer_id = sync_customer(
        session, installation, shopify_customer(shopify_order(1, discount_codes=codes)), now=NOW
    )

    stored = session.scalars(sa.select(Order.discount_code).where(Order.customer_id == customer_id))
    assert list(stored) == ["SUMMER-SALE-2026-TEA-LOVERS, LOYALTY-GOLD-MEMBER-15"]


# --- Per-installation configuration and the connection check ----------------------------------


@pytest.fixture
def app_session(app: Flask) -> Iterator[Session]:
    with db.database(app).sessions() as session:
        yield session


@pytest.fixture
def acme(app_session: Session) -> Installation:
    row = Installation(platform="zendesk", account="acme", display_name="Acme")
    app_session.add(row)
    app_session.commit()
    return row


def vault_of(app: Flask) -> CredentialsVault:
    vault: CredentialsVault = app.extensions[EXTENSION_KEY]
    return vault


def test_connecting_stores_the_token_encrypted(
    app: Flask, app_session: Session, acme: Installation
) -> None:
    connection = connect_shopify(
        app_session, acme, vault_of(app), shop="Regulars-Test", access_token=f" {TOKEN}\n"
    )
    app_session.commit()

    assert (acme.shopify_shop, connection.shop) == (SHOP, SHOP)
    assert acme.shopify_credentials_encrypted is not None
    assert TOKEN not in acme.shopify_credentials_encrypted
    assert TOKEN not in repr(connection)
    assert shopify_connection(acme, vault_of(app)) == connection


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"shop": "acme.example.com"}, "myshopify.com"),
        ({"access_token": "  "}, "access token"),
        ({"access_token": "two words"}, "access token"),
        ({"api_base_url": "ftp://fake"}, "api_base_url"),
        ({"api_base_url": "https://user:pw@fake"}, "api_base_url"),
    ],
)
def test_connecting_refuses_unusable_values_without_showing_the_token(
    app: Flask, app_session: Session, acme: Installation, changes: dict[str, str], words: str
) -> None:
    values = {"shop": SHOP, "access_token": TOKEN, **changes}
    with pytest.raises(RegistrationError, match=words) as raised:
        connect_shopify(app_session, acme, vault_of(app), **values)

    assert TOKEN not in str(raised.value)
    assert acme.shopify_shop is None


def test_a_client_shares_the_stores_session_and_budget(
    app: Flask, app_session: Session, acme: Installation
) -> None:
    accounts = AccountSessions()
    assert shopify_client_for(acme, vault_of(app), accounts, timeout=1.0) is None
    fake = "http://127.0.0.1:8931"
    connect_shopify(
        app_session, acme, vault_of(app), shop=SHOP, access_token=TOKEN, api_base_url=fake
    )

    client = shopify_client_for(acme, vault_of(app), accounts, timeout=1.0)

    assert client is not None and client.shop == SHOP
    assert client._http.session is accounts.session(fake)
    assert client._http.budget is accounts.budget(fake)
    accounts.close()


def test_disconnecting_forgets_the_store_and_token(
    app: Flask, app_session: Session, acme: Installation
) -> None:
    connect_shopify(app_session, acme, vault_of(app), shop=SHOP, access_token=TOKEN)

    assert disconnect_shopify(app_session, acme) is True
    assert (acme.shopify_shop, acme.shopify_credentials_encrypted) == (None, None)
    assert disconnect_shopify(app_session, acme) is False
    assert shopify_connection(acme, vault_of(app)) is None


def test_rotating_the_key_reencrypts_shopify_tokens(
    app: Flask, app_session: Session, acme: Installation
) -> None:
    old_key, new_key = generate_key(), generate_key()
    connect_shopify(app_session, acme, CredentialsVault([old_key]), shop=SHOP, access_token=TOKEN)

    assert reencrypt_shopify_credentials(app_session, CredentialsVault([new_key, old_key])) == 1

    assert shopify_connection(acme, CredentialsVault([new_key])) is not None
    with pytest.raises(CredentialsError):
        shopify_connection(acme, CredentialsVault([old_key]))


def run_check(app: Flask, installation: Installation) -> list[tuple[str, CheckStatus, str]]:
    with new_session() as http_session:
        report = check_shopify(installation, vault_of(app), http_session=http_session, timeout=2)
    for check in report.checks:
        assert TOKEN not in check.message
    return [(check.name, check.status, check.message) for check in report.checks]


@pytest.fixture
def connected(app: Flask, app_session: Session, acme: Installation) -> Installation:
    connect_shopify(app_session, acme, vault_of(app), shop=SHOP, access_token=TOKEN)
    app_session.commit()
    return acme


def test_the_check_passes_for_a_working_token(
    app: Flask, connected: Installation, rsps: responses.RequestsMock
) -> None:
    rsps.post(
        URL,
        json=check_answer(scopes=("read_customers", "write_orders", "read_all_orders")),
        match=[
            matchers.header_matcher({"X-Shopify-Access-Token": TOKEN}),
            matchers.json_params_matcher({"query": CHECK_QUERY, "variables": {}}),
        ],
    )

    assert run_check(app, connected) == [
        ("Shop reachable", CheckStatus.OK, f"https://{SHOP} answered"),
        ("Access token valid", CheckStatus.OK, "Signed in to the shop Regulars Test Tea"),
        ("Access scopes granted", CheckStatus.OK, "read_customers, read_orders granted"),
        ("Currency matches", CheckStatus.OK, "The shop sells in USD"),
        (
            "Gestures the shop can give",
            CheckStatus.OK,
            "Can give refunds; discount codes need write_discounts; gift cards need "
            "write_gift_cards, write_customers; free replacements need write_draft_orders; "
            "free-shipping codes need write_discounts",
        ),
    ]


def test_the_check_explains_missing_scopes_and_another_currency(
    app: Flask, connected: Installation, rsps: responses.RequestsMock
) -> None:
    rsps.post(URL, json=check_answer(currency="EUR", scopes=("read_customers",)))

    checks = run_check(app, connected)

    assert [status for _, status, _ in checks] == [
        CheckStatus.OK,
        CheckStatus.OK,
        CheckStatus.FAILED,
        CheckStatus.FAILED,
        CheckStatus.OK,
    ]
    assert "The token lacks read_orders" in checks[2][2]
    assert "sells in EUR but the installation shows amounts in USD" in checks[3][2]


def test_the_check_notes_that_orders_may_be_limited_to_60_days(
    app: Flask, connected: Installation, rsps: responses.RequestsMock
) -> None:
    rsps.post(URL, json=check_answer())

    assert "last 60 days" in run_check(app, connected)[2][2]


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ({"status": 401, "json": {"errors": "[API] Invalid API key"}}, "refused the access token"),
        ({"status": 402, "json": {"errors": "Unavailable Shop"}}, "unpaid Shopify bill"),
        ({"status": 423, "json": {"errors": "Locked"}}, "The shop is locked"),
        ({"status": 503, "body": "<html>oops</html>"}, "Shopify had an error (503)"),
        ({"status": 429, "headers": {"Retry-After": "7"}}, "try again in 7 s"),
        ({"body": "<html>a login page</html>"}, "does not answer like Shopify's Admin API"),
    ],
)
def test_the_check_says_why_the_token_does_not_work(
    app: Flask,
    connected: Installation,
    rsps: responses.RequestsMock,
    answer: dict[str, Any],
    words: str,
) -> None:
    rsps.post(URL, **answer)

    checks = run_check(app, connected)

    assert checks[0][1] is CheckStatus.OK
    assert checks[1][1] is CheckStatus.FAILED and words in checks[1][2]
    assert [status for _, status, _ in checks[2:]] == [CheckStatus.SKIPPED] * 3


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ({"status": 404, "json": {"errors": "Not Found"}}, f"There is no Shopify store at {SHOP}"),
        ({"body": requests.exceptions.ConnectTimeout()}, "did not answer within 2 s"),
    ],
)
def test_the_check_says_when_the_shop_cannot_be_reached(
    app: Flask,
    connected: Installation,
    rsps: responses.RequestsMock,
    answer: dict[str, Any],
    words: str,
) -> None:
    rsps.post(URL, **answer)

    checks = run_check(app, connected)

    assert checks[0][1] is CheckStatus.FAILED and words in checks[0][2]
    assert [status for _, status, _ in checks[1:]] == [CheckStatus.SKIPPED] * 4


def test_checking_without_a_store_says_how_to_connect_one(app: Flask, acme: Installation) -> None:
    with pytest.raises(CredentialsError, match="flask data shopify connect"):
        run_check(app, acme)


# --- The CLI ----------------------------------------------------------------------------------


def assert_no_token(text: str) -> None:
    assert TOKEN not in text


def stored(app: Flask) -> Installation:
    with db.database(app).sessions() as session:
        return session.scalars(sa.select(Installation)).one()


CONNECT = ["data", "shopify", "connect", "--installation", "acme", "--shop", SHOP]


def test_connect_reads_the_token_from_the_environment_and_checks(
    app: Flask, runner: FlaskCliRunner, acme: Installation, rsps: responses.RequestsMock
) -> None:
    rsps.post(
        URL, json=check_answer(), match=[matchers.header_matcher({"X-Shopify-Access-Token": TOKEN})]
    )

    result = runner.invoke(args=CONNECT, env={"SHOPIFY_ACCESS_TOKEN": TOKEN})

    assert result.exit_code == 0, result.output
    assert f"Connected Shopify store {SHOP} to installation zendesk:acme." in result.output
    assert "✓ Access token valid: Signed in to the shop Regulars Test Tea" in result.output
    assert_no_token(result.output)
    connection = shopify_connection(stored(app), vault_of(app))
    assert connection is not None and connection.access_token == TOKEN


def test_connect_prompts_for_the_token_without_echoing_it(
    app: Flask, runner: FlaskCliRunner, acme: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHOPIFY_ACCESS_TOKEN", raising=False)

    result = runner.invoke(args=[*CONNECT, "--no-check"], input=f"{TOKEN}\n")

    assert result.exit_code == 0, result.output
    assert "Shopify Admin API access token (or set SHOPIFY_ACCESS_TOKEN):" in result.output
    assert_no_token(result.output)
    assert stored(app).shopify_shop == SHOP


def test_the_token_is_never_a_command_line_option(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["data", "shopify", "connect", "--help"])

    assert result.exit_code == 0
    assert "SHOPIFY_ACCESS_TOKEN" in result.output
    assert "--token" not in result.output
    assert "--access-token" not in result.output


def test_connect_refuses_a_shop_that_is_not_a_myshopify_domain(
    app: Flask, runner: FlaskCliRunner, acme: Installation
) -> None:
    result = runner.invoke(
        args=[*CONNECT[:-1], "shop.example.com", "--no-check"],
        env={"SHOPIFY_ACCESS_TOKEN": TOKEN},
    )

    assert result.exit_code == 2
    assert "myshopify.com" in result.output
    assert_no_token(result.output)
    assert stored(app).shopify_shop is None


def test_connect_keeps_the_store_when_the_check_fails(
    app: Flask, runner: FlaskCliRunner, acme: Installation, rsps: responses.RequestsMock
) -> None:
    rsps.post(URL, status=401, json={"errors": "[API] Invalid API key or access token"})

    result = runner.invoke(args=CONNECT, env={"SHOPIFY_ACCESS_TOKEN": TOKEN})

    assert result.exit_code == 1
    assert "✗ Access token valid: Shopify refused the access token (401)" in result.output
    assert "flask data shopify check --installation zendesk:acme" in result.output
    assert_no_token(result.output)
    assert stored(app).shopify_shop == SHOP


def test_check_and_disconnect(
    app: Flask, runner: FlaskCliRunner, connected: Installation, rsps: responses.RequestsMock
) -> None:
    rsps.post(URL, json=check_answer())

    checked = runner.invoke(args=["data", "shopify", "check", "--installation", "acme"])
    assert checked.exit_code == 0, checked.output
    assert "✓ Shop reachable" in checked.output

    gone = runner.invoke(args=["data", "shopify", "disconnect", "--installation", "acme"])
    assert gone.exit_code == 0, gone.output
    assert f"Disconnected Shopify store {SHOP}" in gone.output
    again = runner.invoke(args=["data", "shopify", "disconnect", "--installation", "acme"])
    assert again.exit_code == 1
    assert "has no Shopify store connected" in again.output


def test_sync_stores_the_customer_and_reports_shopifys_figures(
    app: Flask, runner: FlaskCliRunner, connected: Installation, rsps: responses.RequestsMock
) -> None:
    rsps.post(URL, json=customers_answer(customer_node()), match=lookup_match(orders=5))

    result = runner.invoke(
        args=[
            "data",
            "shopify",
            "sync",
            "--installation",
            "acme",
            "--email",
            EMAIL,
            "--orders",
            "5",
        ]
    )

    assert result.exit_code == 0, result.output
    assert "Synced Priya Raman (customer 1): 3 recent orders read" in result.output
    assert "Shopify counts 14 orders and 1234.56 USD spent." in result.output
    assert_no_token(result.output)
    with db.database(app).sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Order)) == 3


@pytest.mark.parametrize(
    ("answer", "code", "words"),
    [
        ({"json": customers_answer()}, 1, f"{SHOP} has no customer with the email"),
        ({"status": 401, "json": {"errors": "bad"}}, 1, "refused the access token"),
    ],
)
def test_sync_failures_are_reported_without_the_token(
    app: Flask,
    runner: FlaskCliRunner,
    connected: Installation,
    rsps: responses.RequestsMock,
    answer: dict[str, Any],
    code: int,
    words: str,
) -> None:
    rsps.post(URL, **answer)

    result = runner.invoke(
        args=["data", "shopify", "sync", "--installation", "acme", "--email", EMAIL]
    )

    assert result.exit_code == code
    assert words in result.output
    assert_no_token(result.output)


def test_sync_without_a_store_says_how_to_connect_one(
    runner: FlaskCliRunner, acme: Installation
) -> None:
    result = runner.invoke(
        args=["data", "shopify", "sync", "--installation", "acme", "--email", EMAIL]
    )

    assert result.exit_code == 1
    assert "flask data shopify connect" in result.output


def test_an_orders_payment_fulfilment_tracking_and_items_are_read_in_our_words(
    client: ShopifyClient, rsps: responses.RequestsMock
) -> None:
    standing = [
        order_node(
            1,
            processed_at="2026-11-01T00:00:00Z",
            amount="10.00",
            displayFinancialStatus="PARTIALLY_REFUNDED",
            displayFulfillmentStatus="PARTIALLY_FULFILLED",
            subtotalLineItemsQuantity=3,
            fulfillments=[
                {"trackingInfo": []},
                {"trackingInfo": [{"url": "https://carrier.example.com/t/1"}]},
            ],
        ),
        order_node(
            2,
            processed_at="2026-11-02T00:00:00Z",
            amount="10.00",
            displayFinancialStatus="EXPIRED",  # not in our vocabulary: unknown
            displayFulfillmentStatus="ON_HOLD",
            subtotalLineItemsQuantity="many",
            fulfillments=[{"trackingInfo": [{"url": "javascript:alert(1)"}]}],
        ),
    ]
    rsps.post(
        URL,
        json=customers_answer(customer_node(orders={"nodes": standing})),
        match=lookup_match(),
    )

    first, second = client.customer_by_email(EMAIL).orders  # type: ignore[union-attr]

    assert (first.status, first.fulfillment_status, first.item_count) == (
        "partially_refunded",
        "partial",
        3,
    )
    assert first.tracking_url == "https://carrier.example.com/t/1"
    assert (second.status, second.fulfillment_status, second.item_count) == (
        None,
        "unfulfilled",
        None,
    )
    assert second.tracking_url is None, "only an http(s) link is kept"
