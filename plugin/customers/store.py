"""Store customer and order records idempotently, merging a customer known under several keys.

A customer is the same person whether a record names them by the company's customer id, the
helpdesk user id, email or phone: a record that matches an existing customer by any of these
updates that customer instead of adding a second one, so orders are never counted twice. The
same record sent twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from plugin.clock import utcnow
from plugin.customers import staged_orders
from plugin.customers.bulk_writes import insert_rows, insert_tuples, one_of, plain_rows
from plugin.customers.orders import customers_with_stale_facts, refresh_order_facts
from plugin.customers.records import (
    CustomerRecord,
    FieldProblem,
    OrderRecord,
    OrderRow,
    order_row_of,
)
from plugin.customers.segmentation import refresh_customers
from plugin.models import Customer, CustomerSegment, Order


@dataclass
class StoreResult:
    """What a batch did: counts, the records refused (by position) and customers touched."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[tuple[int, FieldProblem]] = field(default_factory=list)
    customer_ids: set[int] = field(default_factory=set)
    # The customers the records named (of orders: those found), touched or not.
    customers_named: set[int] = field(default_factory=set)
    # Customers of unchanged orders whose facts were left for the caller to check
    # (`store_order_rows`' `check_stale=False`).
    unchecked_customers: set[int] = field(default_factory=set)

    def add(self, other: StoreResult, *, offset: int = 0) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.problems.extend((index + offset, problem) for index, problem in other.problems)
        self.customer_ids |= other.customer_ids
        self.customers_named |= other.customers_named
        self.unchecked_customers |= other.unchecked_customers


def store_customers(
    session: Session,
    installation_id: int,
    records: Sequence[CustomerRecord],
    *,
    now: datetime,
    refresh: bool = True,
) -> StoreResult:
    """Create or update customers, matching by customer id, helpdesk id, email, then phone.

    With `refresh=False` the touched customers' segments are left for the caller to refresh
    (`StoreResult.customer_ids`), as a bulk import does once at its end.
    """
    session.flush()
    result = StoreResult()
    index = _CustomerIndex.load(session, installation_id, records)
    created: list[_StoredCustomer] = []
    changed: dict[int, _StoredCustomer] = {}
    unchanged: set[int] = set()
    for position, record in enumerate(records):
        customer = index.match(record)
        conflict = index.conflict(record, customer)
        if conflict is not None:
            result.problems.append((position, conflict))
            continue
        if customer is None:
            customer = _StoredCustomer(id=None, name=record.name)
            _apply(customer, record)
            index.remember(customer)
            created.append(customer)
            result.created += 1
        elif _apply(customer, record):
            index.remember(customer)
            if customer.id is not None:
                changed[customer.id] = customer
            result.updated += 1
        else:
            result.unchanged += 1
            if customer.id is not None:
                unchanged.add(customer.id)
    _write_customers(session, installation_id, created, changed)
    result.customer_ids = {c.id for c in index.touched if c.id is not None}
    if not refresh:
        # A bulk import run again after a crash: profile those it never got to.
        result.customer_ids |= _without_segment(session, unchanged - result.customer_ids)
    if refresh:
        refresh_customers(session, installation_id, result.customer_ids, now=now)
    return result


def store_orders(
    session: Session,
    installation_id: int,
    records: Sequence[OrderRecord],
    *,
    source: str,
    now: datetime,
    refresh: bool = True,
) -> StoreResult:
    """Create or update orders of known customers, then refresh those customers' order facts.

    With `refresh=False` the touched customers' order facts and segments are left for the
    caller to refresh (`StoreResult.customer_ids`), as a bulk import does once at its end.
    """
    rows = [order_row_of(record) for record in records]
    return store_order_rows(session, installation_id, rows, source=source, now=now, refresh=refresh)


def store_order_rows(
    session: Session,
    installation_id: int,
    rows: Sequence[OrderRow],
    *,
    source: str,
    now: datetime,
    refresh: bool = True,
    check_stale: bool = True,
) -> StoreResult:
    """`store_orders` for orders as `OrderRow`s, as a bulk import reads them: matched and
    written without an object or a dict per order.

    Without `check_stale`, the customers of unchanged rows are not checked for stale facts
    here (that reads their orders through the history index) but handed back in
    `unchecked_customers`: an import that dropped the index checks them once it is built.
    """
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        records = [OrderRecord(*row) for row in rows]
        if staged_orders.applies(session, records):
            return _store_orders_staged(
                session, installation_id, records, source=source, now=now, refresh=refresh
            )
    result = StoreResult()
    by_id, by_email = _customers_for_orders(session, installation_id, rows)
    # An order's values in _ORDER_VALUES' order; [id (None: created in this batch), values].
    existing: dict[str, list[Any]] = {
        external_id: [order_id, tuple(values)]
        for order_id, external_id, *values in session.execute(
            sa.select(
                _ORDERS.c.id,
                _ORDERS.c.external_id,
                *(_ORDERS.c[name] for name in _ORDER_VALUES),
            ).where(
                _ORDERS.c.installation_id == installation_id,
                one_of(session, _ORDERS.c.external_id, {row[0] for row in rows}),
            )
        )
    }
    created: list[tuple[str, list[Any]]] = []
    changed: dict[int, list[Any]] = {}
    unchanged: set[int] = set()
    for position, row in enumerate(rows):
        external_id, customer_external_id, customer_email = row[0], row[1], row[2]
        customer_id = by_id.get(customer_external_id) or by_email.get(customer_email)
        if customer_id is None:
            who = customer_external_id or customer_email
            field_name = "customer_id" if customer_external_id else "customer_email"
            result.problems.append(
                (position, FieldProblem(field_name, f"no customer {who!r}: add the customer first"))
            )
            continue
        values = (customer_id, *row[3:])
        result.customers_named.add(customer_id)
        order = existing.get(external_id)
        if order is None:
            # Created below; a second record for it in this batch updates the same values.
            order = [None, values]
            created.append((external_id, order))
            existing[external_id] = order
            result.created += 1
        elif order[1] != values:
            # The order may have moved to another customer: its old owner is touched too.
            result.customer_ids.add(order[1][0])
            order[1] = values
            if order[0] is not None:
                changed[order[0]] = order
            result.updated += 1
        else:
            result.unchanged += 1
            unchanged.add(customer_id)
            continue
        result.customer_ids.add(customer_id)
    if not refresh and not check_stale:
        result.unchecked_customers = unchanged - result.customer_ids
    elif not refresh:
        # A bulk import run again after a crash: its customers' facts may be missing or stale.
        result.customer_ids |= customers_with_stale_facts(
            session, installation_id, unchanged - result.customer_ids
        )
    if created:
        # In the table's column order, as the INSERT lists them: no reordering a row.
        insert_tuples(
            session,
            _ORDERS,
            _ORDER_COLUMNS,
            [
                (installation_id, values[0], external_id, *values[1:5], source, *values[5:])
                for external_id, (_id, values) in created
            ],
        )
    if changed:
        session.execute(
            sa.update(_ORDERS)
            .where(_ORDERS.c.id == sa.bindparam("order_id"))
            .values({name: sa.bindparam(name) for name in _ORDER_VALUES}),
            [
                {"order_id": order_id, **dict(zip(_ORDER_VALUES, order[1], strict=True))}
                for order_id, order in changed.items()
            ],
        )
        _expire(session, Order, changed)
    if result.customer_ids and refresh:
        refresh_order_facts(
            session, installation_id=installation_id, now=now, customer_ids=result.customer_ids
        )
        # A new order can move a customer to another segment: profile just them again.
        refresh_customers(session, installation_id, result.customer_ids, now=now)
    return result


def _store_orders_staged(
    session: Session,
    installation_id: int,
    records: Sequence[OrderRecord],
    *,
    source: str,
    now: datetime,
    refresh: bool,
) -> StoreResult:
    """`store_orders` on PostgreSQL: the batch merged through a staging table
    (`staged_orders`), every line's fate and the customers touched as the Python path has them.
    """
    fates = staged_orders.store(session, installation_id, records, source=source)
    result = StoreResult(
        created=fates.created,
        updated=fates.updated,
        unchanged=fates.unchanged,
        customer_ids=fates.touched,
        customers_named=fates.named,
    )
    for position in fates.refused:
        record = records[position]
        who = record.customer_external_id or record.customer_email
        field_name = "customer_id" if record.customer_external_id else "customer_email"
        result.problems.append(
            (position, FieldProblem(field_name, f"no customer {who!r}: add the customer first"))
        )
    if fates.changed:
        session.execute(
            sa.update(_ORDERS)
            .where(_ORDERS.c.id == sa.bindparam("order_id"))
            .values({name: sa.bindparam(name) for name in _ORDER_VALUES}),
            [
                {
                    "order_id": order_id,
                    "customer_id": customer_id,
                    **{name: getattr(records[position], name) for name in _ORDER_VALUES[1:]},
                }
                for order_id, position, customer_id in fates.changed
            ],
        )
        _expire(session, Order, [order_id for order_id, _position, _customer in fates.changed])
    if not refresh:
        # A bulk import run again after a crash: its customers' facts may be missing or stale.
        result.customer_ids |= customers_with_stale_facts(
            session, installation_id, fates.unchanged_customers - result.customer_ids
        )
    if result.customer_ids and refresh:
        refresh_order_facts(
            session, installation_id=installation_id, now=now, customer_ids=result.customer_ids
        )
        refresh_customers(session, installation_id, result.customer_ids, now=now)
    return result


_CUSTOMERS = cast(sa.Table, Customer.__table__)
_ORDERS = cast(sa.Table, Order.__table__)
_SEGMENTS = cast(sa.Table, CustomerSegment.__table__)
# What an order says, as stored and compared: anything else is fixed when it is created.
_ORDER_VALUES = (
    *("customer_id", "placed_at", "amount_cents", "discount_code", "category"),
    *("status", "fulfillment_status", "tracking_url", "item_count"),
)
_ORDER_COLUMNS = (
    *("installation_id", "customer_id", "external_id", "placed_at", "amount_cents"),
    *("discount_code", "category", "source", *_ORDER_VALUES[5:]),
)
_CUSTOMER_VALUES = ("external_id", "name", "email", "phone", "helpdesk_user_id", "customer_since")


@dataclass(eq=False)
class _StoredCustomer:
    """A customer's matching keys and values, as stored (id set) or about to be (id None).

    Plain objects, not ORM instances: a batch of thousands is matched and written with a few
    statements instead of being tracked by the session.
    """

    id: int | None
    name: str
    external_id: str | None = None
    email: str | None = None
    phone: str | None = None
    helpdesk_user_id: str | None = None
    customer_since: date | None = None


def _apply(customer: _StoredCustomer, record: CustomerRecord) -> bool:
    """Copy a record's values onto a customer; keep what the record leaves out. True if changed."""
    changed = False
    for name in _CUSTOMER_VALUES:
        value = getattr(record, name)
        if value is not None and getattr(customer, name) != value:
            setattr(customer, name, value)
            changed = True
    return changed


def _write_customers(
    session: Session,
    installation_id: int,
    created: list[_StoredCustomer],
    changed: dict[int, _StoredCustomer],
) -> None:
    """Insert the new customers (learning their ids) and update the changed ones."""
    table = _CUSTOMERS
    if created:
        now = utcnow()
        insert_rows(
            session,
            table,
            [
                {
                    "installation_id": installation_id,
                    **{name: getattr(customer, name) for name in _CUSTOMER_VALUES},
                    "created_at": now,
                    "updated_at": now,
                }
                for customer in created
            ],
        )
        # A new customer always has a company id (a record needs one), unique in the batch.
        by_external_id = {customer.external_id: customer for customer in created}
        for customer_id, external_id in plain_rows(
            session,
            sa.select(table.c.id, table.c.external_id).where(
                table.c.installation_id == installation_id,
                one_of(session, table.c.external_id, by_external_id),
            ),
        ):
            by_external_id[external_id].id = customer_id
    if changed:
        session.execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("customer_id"))
            .values({name: sa.bindparam(name) for name in _CUSTOMER_VALUES}),
            [
                {
                    "customer_id": customer_id,
                    **{name: getattr(customer, name) for name in _CUSTOMER_VALUES},
                }
                for customer_id, customer in changed.items()
            ],
        )
        _expire(session, Customer, changed)


def _without_segment(session: Session, customer_ids: set[int]) -> set[int]:
    """Those of these customers who have no stored segment."""
    if not customer_ids:
        return set()
    profiled = set(
        session.scalars(
            sa.select(_SEGMENTS.c.customer_id).where(
                one_of(session, _SEGMENTS.c.customer_id, customer_ids)
            )
        )
    )
    return customer_ids - profiled


def _expire(
    session: Session, model: type[Customer] | type[Order], ids: Iterable[int | None]
) -> None:
    """Make instances the session already holds read the values just written past it."""
    mapper = model.__mapper__
    for row_id in ids:
        instance = session.identity_map.get(mapper.identity_key_from_primary_key((row_id,)))
        if instance is not None:
            session.expire(instance)


@dataclass
class _CustomerIndex:
    """The installation's customers that a batch could match, by each key they are known by."""

    by_key: dict[tuple[str, str], _StoredCustomer]
    touched: list[_StoredCustomer] = field(default_factory=list)

    KEYS = ("external_id", "helpdesk_user_id", "email", "phone")

    @classmethod
    def load(
        cls, session: Session, installation_id: int, records: Sequence[CustomerRecord]
    ) -> _CustomerIndex:
        # Table columns, not ORM attributes: plain rows, without the ORM's loading per row.
        # One query per key, each answered by its own index, and no ORDER BY: asked to sort,
        # SQLite walks the installation's customers in id order instead (all of them).
        found: dict[int, Row[Any]] = {}
        for key in cls.KEYS:
            values = {getattr(r, key) for r in records} - {None}
            if values:
                for row in session.execute(
                    sa.select(
                        _CUSTOMERS.c.id, *(_CUSTOMERS.c[name] for name in _CUSTOMER_VALUES)
                    ).where(
                        _CUSTOMERS.c.installation_id == installation_id,
                        one_of(session, _CUSTOMERS.c[key], values),
                    )
                ):
                    found[row[0]] = row
        index = cls(by_key={})
        for customer_id in sorted(found):  # the oldest first, as the index keeps the first
            fields: dict[str, Any] = dict(
                zip(_CUSTOMER_VALUES, found[customer_id][1:], strict=True)
            )
            index._index(_StoredCustomer(id=customer_id, **fields), overwrite=False)
        return index

    def match(self, record: CustomerRecord) -> _StoredCustomer | None:
        """The customer this record is about; another company id means another customer."""
        for key in self.KEYS:
            value = getattr(record, key)
            candidate = self.by_key.get((key, value)) if value is not None else None
            if candidate is None:
                continue
            if candidate.external_id in (None, record.external_id):
                return candidate
        return None

    def conflict(
        self, record: CustomerRecord, customer: _StoredCustomer | None
    ) -> FieldProblem | None:
        """Why the record cannot be stored as `customer`: a helpdesk id another one holds.

        A helpdesk user is one customer; a record that names a new company id with a helpdesk
        id another customer has names two customers at once, and which one is meant is the
        company's to say: refused, naming the other customer by company id (or our id).
        """
        value = record.helpdesk_user_id
        holder = self.by_key.get(("helpdesk_user_id", value)) if value is not None else None
        if holder is None or holder is customer:
            return None
        other = repr(holder.external_id) if holder.external_id else f"#{holder.id} (no customer_id)"
        return FieldProblem(
            "helpdesk_user_id",
            f"{value!r} belongs to customer {other}, not to {record.external_id!r}: "
            "change the customer_id or the helpdesk_user_id so they name one customer",
        )

    def remember(self, customer: _StoredCustomer) -> None:
        self._index(customer, overwrite=True)
        self.touched.append(customer)

    def _index(self, customer: _StoredCustomer, *, overwrite: bool) -> None:
        for key in self.KEYS:
            value = getattr(customer, key)
            if value is not None and (overwrite or (key, value) not in self.by_key):
                self.by_key[(key, value)] = customer


def _customers_for_orders(
    session: Session, installation_id: int, rows: Sequence[OrderRow]
) -> tuple[dict[str | None, int], dict[str | None, int]]:
    """The customers the orders name, by company id and by email (the oldest with it)."""
    ids = {row[1] for row in rows} - {None}
    emails = {row[2] for row in rows if row[1] is None} - {None}
    by_id: dict[str | None, int] = {}
    by_email: dict[str | None, int] = {}
    if ids:
        by_id = dict(
            plain_rows(
                session,
                sa.select(_CUSTOMERS.c.external_id, _CUSTOMERS.c.id).where(
                    _CUSTOMERS.c.installation_id == installation_id,
                    one_of(session, _CUSTOMERS.c.external_id, ids),
                ),
            )
        )
    if emails:
        # The oldest wins when an email is shared; chosen here, not by an ORDER BY, which
        # SQLite answers by walking the installation's customers in id order.
        for email, customer_id in plain_rows(
            session,
            sa.select(_CUSTOMERS.c.email, _CUSTOMERS.c.id).where(
                _CUSTOMERS.c.installation_id == installation_id,
                one_of(session, _CUSTOMERS.c.email, emails),
            ),
        ):
            if email not in by_email or customer_id < by_email[email]:
                by_email[email] = customer_id
    return by_id, by_email
