"""A customer's recent orders as the sidebar's orders card shows them, and the one a ticket names.

Read from the shop's answer when a shop is connected (`from_shop`: the answer the banner's
upstream cache holds), else from the customer's stored orders (`from_stored`, on the rows
`lookup.stored_orders_of` reads). No Flask; nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.customers.lookup import StoredOrder
from plugin.customers.shopify_client import ShopifyCustomer
from plugin.domain.order_numbers import comparable, named_order, order_numbers
from plugin.models import Order

SHOWN = 5


@dataclass(frozen=True)
class RecentOrder:
    """One order as the card shows it; statuses in the vocabularies of `records`."""

    number: str  # what the customer calls it: "ORD-12185", "#1001"
    placed_at: datetime
    amount_cents: int
    currency: str | None  # None: the installation's currency
    item_count: int | None = None
    status: str | None = None
    fulfillment_status: str | None = None
    tracking_url: str | None = None
    named: bool = False  # the order the ticket names


@dataclass(frozen=True)
class RecentOrders:
    """The last orders, newest first, with the one the ticket names (also in `orders`)."""

    orders: tuple[RecentOrder, ...]
    source: str  # "shopify" or "stored"
    named: RecentOrder | None = None


def from_shop(customer: ShopifyCustomer, *, ticket_text: str, shown: int = SHOWN) -> RecentOrders:
    """The shop customer's latest real orders (no test orders), and the one the text names."""
    orders = [
        RecentOrder(
            number=order.name or order.id,
            placed_at=order.placed_at,
            amount_cents=order.amount_cents,
            currency=order.currency,
            item_count=order.item_count,
            status=order.status,
            fulfillment_status=order.fulfillment_status,
            tracking_url=order.tracking_url,
        )
        for order in sorted(customer.orders, key=lambda order: order.placed_at, reverse=True)
        if not order.test
    ]
    return _with_named(orders, ticket_text, shown=shown, source="shopify")


def from_stored(
    stored: Sequence[StoredOrder], *, ticket_text: str, now: datetime, shown: int = SHOWN
) -> RecentOrders:
    """The customer's stored orders placed by `now` (`stored`: all of them, oldest first),
    newest first, and the one the text names even if older."""
    placed = [order for order in stored if order.placed_at <= now]
    latest = sorted(placed, key=lambda order: (order.placed_at, order.id), reverse=True)[:shown]
    spellings = _spellings(ticket_text)
    found = {order.external_id: order for order in placed if order.external_id in spellings}
    number = named_order(ticket_text, found) if found else None
    older = [found[number]] if number is not None else []
    return _with_named(
        [_shown(order) for order in _unique([*latest, *older])],
        ticket_text,
        shown=shown,
        source="stored",
    )


def named_stored_order(
    session: Session, installation_id: int, customer_id: int, *, ticket_text: str, now: datetime
) -> Order | None:
    """The customer's stored order the text names by number ("ORD-12185", "#1234", "order
    1234"), if any: the first number mentioned that is one of theirs. Read afresh, for an
    action; the sidebar's cards draw it from the orders they read (`from_stored`)."""
    spellings = _spellings(ticket_text)
    if not spellings:
        return None
    bound = {"installation_id": installation_id, "customer_id": customer_id, "now": now}
    found = {
        order.external_id: order
        for order in session.scalars(_named_query(), bound | {"spellings": sorted(spellings)})
    }
    number = named_order(ticket_text, found)
    return found[number] if number is not None else None


def _spellings(ticket_text: str) -> set[str]:
    """The order numbers the text mentions, as exact ids may spell them: any case, with or
    without "#" (the few spellings a number is stored in)."""
    return {
        spelled
        for number in order_numbers(ticket_text)
        for bare in (number.lstrip("#"),)
        for spelled in (bare, bare.upper(), bare.lower(), f"#{bare}")
    }


# Built once, with bound values: building a statement costs SQLAlchemy more than running it.


@cache
def _named_query() -> sa.Select[Order]:
    return sa.select(Order).where(
        Order.installation_id == sa.bindparam("installation_id"),
        Order.customer_id == sa.bindparam("customer_id"),
        Order.placed_at <= sa.bindparam("now"),
        Order.external_id.in_(sa.bindparam("spellings", expanding=True)),
    )


def _unique(orders: Iterable[StoredOrder]) -> list[StoredOrder]:
    return list({order.id: order for order in orders}.values())


def _shown(order: StoredOrder) -> RecentOrder:
    return RecentOrder(
        number=order.external_id,
        placed_at=order.placed_at,
        amount_cents=order.amount_cents,
        currency=None,
        item_count=order.item_count,
        status=order.status,
        fulfillment_status=order.fulfillment_status,
        tracking_url=order.tracking_url,
    )


def _with_named(
    orders: Sequence[RecentOrder], ticket_text: str, *, shown: int, source: str
) -> RecentOrders:
    """The first `shown` orders plus the named one (marked) when it is older than those."""
    number = named_order(ticket_text, (order.number for order in orders))
    kept = list(orders[:shown])
    named = None
    if number is not None:
        found = next(order for order in orders if comparable(order.number) == comparable(number))
        named = replace(found, named=True)
        kept = [named if order is found else order for order in kept]
        if named not in kept:
            kept.append(named)
    return RecentOrders(orders=tuple(kept), source=source, named=named)
