"""Shopify as an optional source of customer data: storing what a store says of a customer.

An installation may connect one Shopify store (`shopify_connection`); its client
(`shopify_client`) reads a customer by email. `sync_customer` stores that like any other source:
the customer and orders through `plugin.customers.store` (so the "orders" facts are
recomputed), and Shopify's own figures as facts with source "shopify" and the time they were
fetched.

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
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.customers import lookup as customers
from plugin.customers.orders import refresh_order_facts
from plugin.customers.records import (
    MAX_CODE,
    MAX_NAME,
    CustomerRecord,
    FieldProblem,
    OrderRecord,
    customer_record,
    order_record,
)
from plugin.customers.shopify_client import ShopifyCustomer, ShopifyOrder
from plugin.customers.store import store_customers, store_orders
from plugin.domain.phones import phone_key_or_none, region_or_default
from plugin.models import Customer, Installation, Order

SOURCE = "shopify"
EXTERNAL_ID_PREFIX = "shopify:"


class ShopifySyncError(ValueError):
    """Shopify sent a customer or order the store refuses; the message names which and why."""


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
    region = region_or_default(installation.default_phone_region)
    target = _merge_target(session, installation.id, customer, region)
    record = _customer_record(customer, target, region)
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
    session: Session, installation_id: int, customer: ShopifyCustomer, region: str
) -> Customer | None:
    """The stored customer this one is: by Shopify id, else the oldest by email, then phone."""
    conditions: list[sa.ColumnElement[bool]] = [Customer.external_id == external_id(customer.id)]
    if customer.email:
        conditions.append(Customer.email == customer.email)
    phone = phone_key_or_none(customer.phone, region) if customer.phone else None
    if phone is not None:
        conditions.append(Customer.phone == phone)
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


def _customer_record(
    customer: ShopifyCustomer, target: Customer | None, region: str
) -> CustomerRecord:
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
        return customer_record(fields, phone_region=region)
    except FieldProblem as problem:
        if problem.field != "phone":
            raise ShopifySyncError(f"Shopify customer {customer.id}: {problem}") from None
    # A phone number callers cannot be matched by is not worth losing the customer over.
    return customer_record({**fields, "phone": None}, phone_region=region)


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
                "status": order.status,
                "fulfillment_status": order.fulfillment_status,
                "tracking_url": order.tracking_url,
                "item_count": order.item_count,
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
