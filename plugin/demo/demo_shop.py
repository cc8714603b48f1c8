"""The demo's Shopify store: the fake Shopify kept in the database, stocked with the demo
installation's customers and orders, and what was given in it for the demo shop page.

A demo customer is `gid://shopify/Customer/<customer row id>` and an order
`gid://shopify/Order/<order row id>`, named by its order number (ORD-12185), refundable up to
its amount less what was refunded. Reseeding the demo (new rows) restocks the store and
forgets what was given, so the shop always matches the demo's data.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.customers.shopify_client import DEFAULT_CALLS_PER_MINUTE, ShopifyClient
from plugin.demo import fake_shopify_operations as operations
from plugin.demo.fake_shopify import ACCESS_TOKEN, FakeShopifyEngine, State, empty_state
from plugin.demo.fake_shopify_transport import FAKE_BASE_URL, fake_session
from plugin.gestures.shopify_shop import ShopifyGestureShop
from plugin.helpdesks.http import CallBudget
from plugin.models import Customer, DemoShopState, Installation, Order

DEMO_SHOP = "demo-coffee-and-home"
GATEWAY = "shopify_payments"
TIMEOUT_SECONDS = 5.0


def customer_gid(customer_id: int) -> str:
    return f"gid://shopify/Customer/{customer_id}"


def order_gid(order_id: int) -> str:
    return f"gid://shopify/Order/{order_id}"


class DatabaseStorage:
    """The fake shop's state in the installation's `demo_shop_states` row, in the caller's
    session: what is given is flushed with the caller's work and committed by the caller.
    """

    def __init__(self, session: Session, installation_id: int) -> None:
        self._session = session
        self._installation_id = installation_id

    @contextmanager
    def transaction(self) -> Iterator[State]:
        # Locked on PostgreSQL until the caller commits, so two workers cannot both give
        # from the same copy (SQLite writes one at a time anyway).
        row = self._session.get(DemoShopState, self._installation_id, with_for_update=True)
        state = operations.copy_state(row.state) if row is not None else empty_state()
        yield state
        if row is not None and state == row.state:
            return  # a read: nothing to write
        if row is None:
            self._session.add(DemoShopState(installation_id=self._installation_id, state=state))
        else:
            row.state = state  # a new object, so the JSON column is seen as changed
        self._session.flush()


def demo_engine(session: Session, installation: Installation) -> FakeShopifyEngine:
    """The demo installation's fake Shopify, stocked with its current customers and orders."""
    storage = DatabaseStorage(session, installation.id)
    engine = FakeShopifyEngine(storage, shop_name=installation.display_name or DEMO_SHOP)
    _stock(session, installation, storage)
    return engine


def demo_gesture_shop(session: Session, installation: Installation) -> ShopifyGestureShop:
    """The gesture shop of the demo: the real Shopify client, its calls answered in-process."""
    client = ShopifyClient(
        session=fake_session(demo_engine(session, installation)),
        shop=DEMO_SHOP,
        access_token=ACCESS_TOKEN,
        budget=CallBudget(calls_per_minute=DEFAULT_CALLS_PER_MINUTE * 10),
        timeout=TIMEOUT_SECONDS,
        api_base_url=FAKE_BASE_URL,
    )
    return ShopifyGestureShop(client)


def _stock(session: Session, installation: Installation, storage: DatabaseStorage) -> None:
    """Stock the store with the installation's rows, unless it holds these very rows already."""
    count, first, last = session.execute(
        sa.select(sa.func.count(Order.id), sa.func.min(Order.id), sa.func.max(Order.id)).where(
            Order.installation_id == installation.id
        )
    ).one()
    stock = f"{count}:{first}:{last}"
    with storage.transaction() as state:
        if state.get("stock") == stock:
            return
        state.clear()
        state.update(empty_state(installation.currency))
        state["stock"] = stock
        for customer_id, name in session.execute(
            sa.select(Customer.id, Customer.name).where(Customer.installation_id == installation.id)
        ):
            gid = customer_gid(customer_id)
            state["customers"][gid] = {"id": gid, "name": name}
        orders = session.scalars(
            sa.select(Order).where(Order.installation_id == installation.id).order_by(Order.id)
        )
        for order in orders:
            gid = order_gid(order.id)
            items = max(1, order.item_count or 1)
            state["orders"][gid] = operations.new_order(
                state,
                gid,
                name=order.external_id,
                customer_id=customer_gid(order.customer_id),
                total=Decimal(order.amount_cents) / 100,
                line_items=[
                    (f"gid://shopify/LineItem/{order.id}{n:02d}", _variant(order.category, n), 1)
                    for n in range(items)
                ],
                gateway=GATEWAY,
            )
            state["orders"][gid]["category"] = order.category


def _variant(category: str | None, n: int) -> str:
    """A stable variant id per category and position, so replacements name real variants."""
    number = sum(ord(char) for char in (category or "item")) * 100 + n
    return f"gid://shopify/ProductVariant/{number}"


# --- What was given, for the demo shop page --------------------------------------------------


@dataclass(frozen=True)
class GivenRow:
    """One thing given in the demo shop, as the page lists it (gift cards by last 4 only)."""

    kind: str
    what: str
    customer: str
    detail: str


def given_in_demo_shop(session: Session, installation: Installation) -> list[GivenRow]:
    """Everything given in the demo shop, newest first."""
    engine = demo_engine(session, installation)
    state = engine.snapshot()
    currency = state["currency"]
    names = {gid: customer["name"] for gid, customer in state["customers"].items()}
    rows: list[tuple[int, GivenRow]] = []
    for discount in state["discounts"].values():
        value = (
            f"{float(discount['percentage']) * 100:g} % off"
            if discount["percentage"]
            else f"{discount['amount']} {currency} off"
            if discount["amount"]
            else "free shipping"
        )
        minimum = (
            f", on orders from {discount['minimum']} {currency}" if discount["minimum"] else ""
        )
        customer = ", ".join(names.get(gid, gid) for gid in discount["customer_ids"])
        kind = "Free-shipping code" if discount["kind"] == "free_shipping" else "Discount code"
        rows.append(
            (
                _number(discount["id"]),
                GivenRow(kind, discount["code"], customer, f"{value}{minimum}, once"),
            )
        )
    for card in state["gift_cards"].values():
        expires = f", expires {card['expires_on']}" if card["expires_on"] else ""
        rows.append(
            (
                _number(card["id"]),
                GivenRow(
                    "Gift card",
                    f"…{card['last_characters']}",
                    names.get(card["customer_id"], "—"),
                    f"{card['balance']} {currency} of {card['initial_value']}{expires}",
                ),
            )
        )
    for refund in state["refunds"].values():
        order = state["orders"].get(refund["order_id"], {})
        rows.append(
            (
                _number(refund["id"]),
                GivenRow(
                    "Refund",
                    f"{refund['amount']} {currency} on {order.get('name', '?')}",
                    names.get(order.get("customer_id"), "—"),
                    f"refund {_number(refund['id'])}: {refund['note'] or ''}",
                ),
            )
        )
    for order in state["orders"].values():
        if order.get("replacement"):
            draft: State = next(
                (d for d in state["drafts"].values() if d["order_id"] == order["id"]), {}
            )
            items = sum(item["quantity"] for item in order["line_items"])
            rows.append(
                (
                    _number(order["id"]),
                    GivenRow(
                        "Replacement order",
                        order["name"],
                        names.get(order["customer_id"], "—"),
                        f"{items} item(s) at no charge: {draft.get('note') or ''}",
                    ),
                )
            )
    return [row for _, row in sorted(rows, key=lambda pair: pair[0], reverse=True)]


def _number(gid: str) -> int:
    return int(gid.rsplit("/", 1)[-1])
