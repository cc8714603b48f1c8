"""Store customer and order records idempotently, merging a customer known under several keys.

A customer is the same person whether a record names them by the company's customer id, the
helpdesk user id, email or phone: a record that matches an existing customer by any of these
updates that customer instead of adding a second one, so orders are never counted twice. The
same record sent twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.models import Customer, Order
from plugin.segmentation import refresh_customers
from plugin.sources.orders import refresh_order_facts
from plugin.sources.records import CustomerRecord, FieldProblem, OrderRecord


@dataclass
class StoreResult:
    """What a batch did: counts, the records refused (by position) and customers touched."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[tuple[int, FieldProblem]] = field(default_factory=list)
    customer_ids: set[int] = field(default_factory=set)

    def add(self, other: StoreResult, *, offset: int = 0) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.problems.extend((index + offset, problem) for index, problem in other.problems)
        self.customer_ids |= other.customer_ids


def store_customers(
    session: Session,
    installation_id: int,
    records: Sequence[CustomerRecord],
    *,
    now: datetime,
) -> StoreResult:
    """Create or update customers, matching by customer id, helpdesk id, email, then phone."""
    result = StoreResult()
    index = _CustomerIndex.load(session, installation_id, records)
    for record in records:
        customer = index.match(record)
        if customer is None:
            customer = Customer(installation_id=installation_id, name=record.name)
            _apply(customer, record)
            session.add(customer)
            index.remember(customer)
            result.created += 1
        elif _apply(customer, record):
            index.remember(customer)
            result.updated += 1
        else:
            result.unchanged += 1
    session.flush()
    result.customer_ids = {c.id for c in index.touched}
    refresh_customers(session, installation_id, result.customer_ids, now=now)
    return result


def store_orders(
    session: Session,
    installation_id: int,
    records: Sequence[OrderRecord],
    *,
    source: str,
    now: datetime,
) -> StoreResult:
    """Create or update orders of known customers, then refresh those customers' order facts."""
    result = StoreResult()
    customers = _customers_for_orders(session, installation_id, records)
    existing = {
        order.external_id: order
        for order in session.scalars(
            sa.select(Order).where(
                Order.installation_id == installation_id,
                Order.external_id.in_({r.external_id for r in records}),
            )
        )
    }
    for position, record in enumerate(records):
        customer_id = customers.get(("id", record.customer_external_id)) or customers.get(
            ("email", record.customer_email)
        )
        if customer_id is None:
            who = record.customer_external_id or record.customer_email
            field_name = "customer_id" if record.customer_external_id else "customer_email"
            result.problems.append(
                (position, FieldProblem(field_name, f"no customer {who!r}: add the customer first"))
            )
            continue
        values = {
            "customer_id": customer_id,
            "placed_at": record.placed_at,
            "amount_cents": record.amount_cents,
            "discount_code": record.discount_code,
            "category": record.category,
        }
        order = existing.get(record.external_id)
        if order is None:
            order = Order(
                installation_id=installation_id,
                external_id=record.external_id,
                source=source,
                **values,
            )
            session.add(order)
            existing[record.external_id] = order
            result.created += 1
        elif any(getattr(order, name) != value for name, value in values.items()):
            result.customer_ids.add(order.customer_id)  # an order moved: its old owner too
            for name, value in values.items():
                setattr(order, name, value)
            result.updated += 1
        else:
            result.unchanged += 1
            continue
        result.customer_ids.add(customer_id)
    session.flush()
    if result.customer_ids:
        refresh_order_facts(
            session, installation_id=installation_id, now=now, customer_ids=result.customer_ids
        )
        # A new order can move a customer to another segment: profile just them again.
        refresh_customers(session, installation_id, result.customer_ids, now=now)
    return result


def _apply(customer: Customer, record: CustomerRecord) -> bool:
    """Copy a record's values onto a customer; keep what the record leaves out. True if changed."""
    changed = False
    for name in ("external_id", "name", "email", "phone", "helpdesk_user_id", "customer_since"):
        value = getattr(record, name)
        if value is not None and getattr(customer, name) != value:
            setattr(customer, name, value)
            changed = True
    return changed


@dataclass
class _CustomerIndex:
    """The installation's customers that a batch could match, by each key they are known by."""

    by_key: dict[tuple[str, str], Customer]
    touched: list[Customer] = field(default_factory=list)

    KEYS = ("external_id", "helpdesk_user_id", "email", "phone")

    @classmethod
    def load(
        cls, session: Session, installation_id: int, records: Sequence[CustomerRecord]
    ) -> _CustomerIndex:
        conditions = []
        for key in cls.KEYS:
            values = {getattr(r, key) for r in records} - {None}
            if values:
                conditions.append(getattr(Customer, key).in_(values))
        index = cls(by_key={})
        if conditions:
            for customer in session.scalars(
                sa.select(Customer)
                .where(Customer.installation_id == installation_id, sa.or_(*conditions))
                .order_by(Customer.id)
            ):
                index._index(customer, overwrite=False)
        return index

    def match(self, record: CustomerRecord) -> Customer | None:
        """The customer this record is about; another company id means another customer."""
        for key in self.KEYS:
            value = getattr(record, key)
            candidate = self.by_key.get((key, value)) if value is not None else None
            if candidate is None:
                continue
            if candidate.external_id in (None, record.external_id):
                return candidate
        return None

    def remember(self, customer: Customer) -> None:
        self._index(customer, overwrite=True)
        self.touched.append(customer)

    def _index(self, customer: Customer, *, overwrite: bool) -> None:
        for key in self.KEYS:
            value = getattr(customer, key)
            if value is not None and (overwrite or (key, value) not in self.by_key):
                self.by_key[(key, value)] = customer


def _customers_for_orders(
    session: Session, installation_id: int, records: Sequence[OrderRecord]
) -> dict[tuple[str, str | None], int]:
    ids = {r.customer_external_id for r in records} - {None}
    emails = {r.customer_email for r in records if r.customer_external_id is None} - {None}
    found: dict[tuple[str, str | None], int] = {}
    if ids:
        for customer_id, external_id in session.execute(
            sa.select(Customer.id, Customer.external_id).where(
                Customer.installation_id == installation_id, Customer.external_id.in_(ids)
            )
        ):
            found[("id", external_id)] = customer_id
    if emails:
        for customer_id, email in session.execute(
            sa.select(Customer.id, Customer.email)
            .where(Customer.installation_id == installation_id, Customer.email.in_(emails))
            .order_by(Customer.id.desc())  # the oldest wins when an email is shared
        ):
            found[("email", email)] = customer_id
    return found
