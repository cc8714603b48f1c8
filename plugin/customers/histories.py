"""Read customers' order histories out of the database, a customer at a time, in bounded memory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from functools import cache
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.customers.bulk_writes import one_of
from plugin.domain.order_history import CustomerHistory, OrderRecord
from plugin.models import Customer, CustomerSegment, Order

STREAM_ROWS = 10_000

# Table columns, not ORM attributes: plain rows, without the ORM's loading.
_CUSTOMERS = cast(sa.Table, Customer.__table__)
_ORDERS = cast(sa.Table, Order.__table__)
_SEGMENTS = cast(sa.Table, CustomerSegment.__table__)
# A customer's history as read: id, customer_since, (placed_at, cents, discounted, category)...
# and their segment row's derived stamp (None unless asked for).
RawHistory = tuple[int, date | None, list[tuple[datetime, int, bool, str | None]], str | None]


def customer_histories(
    session: Session,
    installation_id: int,
    *,
    now: datetime,
    customer_ids: Sequence[int] | None = None,
) -> Iterator[tuple[int, CustomerHistory]]:
    """Each customer's order history, customer by customer, streamed in customer id order."""
    for customer_id, since, orders, _stamp in raw_histories(
        session, installation_id, now=now, customer_ids=customer_ids
    ):
        yield customer_id, history_of(since, orders)


def history_of(
    since: date | None, orders: list[tuple[datetime, int, bool, str | None]]
) -> CustomerHistory:
    # Positional arguments: a dataclass's keyword call costs a third more, for every order.
    return CustomerHistory(
        tuple([OrderRecord(*order) for order in orders]),
        since,
    )


def raw_histories(
    session: Session,
    installation_id: int,
    *,
    now: datetime,
    customer_ids: Sequence[int] | None = None,
    all_orders: bool = False,
    stamps: bool = False,
) -> Iterator[RawHistory]:
    """Each customer's orders as plain tuples, customer by customer, in customer id order.

    The orders placed up to `now`, or with `all_orders` every one; with `stamps`, the stamp
    of the customer's segment row. Customers without orders come out too, with no orders.
    Only one customer's orders are held at a time.
    """
    session.flush()
    # SQLite keeps a datetime as text, which SQLAlchemy parses with a regular expression;
    # read as text here, fromisoformat parses it several times faster (a profile of a refresh:
    # the parsing cost more than the rest of the read). The first 26 characters, as the
    # expression reads: YYYY-MM-DD HH:MM:SS.ffffff.
    text_moments = session.get_bind().dialect.name == "sqlite"
    one = customer_ids is not None and len(customer_ids) == 1
    query = _history_query(text_moments, all_orders=all_orders, stamps=stamps, one_customer=one)
    bound: dict[str, object] = {"installation_id": installation_id, "now": now}
    if one:
        assert customer_ids is not None
        bound["customer_id"] = customer_ids[0]
    elif customer_ids is not None:
        query = query.where(one_of(session, _CUSTOMERS.c.id, customer_ids))
    current: int | None = None
    since: date | None = None
    stamp: str | None = None
    orders: list[tuple[datetime, int, bool, str | None]] = []
    # Fetched a partition at a time: row by row, the result's own bookkeeping cost more than
    # this loop (a profile of a refresh).
    for rows in session.execute(query, bound).partitions():
        for (
            customer_id,
            customer_since,
            placed_at,
            amount,
            discount_code,
            category,
            stamped,
        ) in rows:
            if customer_id != current:
                if current is not None:
                    yield current, since, orders, stamp
                current, since, orders, stamp = customer_id, customer_since, [], stamped
            if placed_at is not None:
                if text_moments:
                    placed_at = datetime.fromisoformat(placed_at[:26])
                orders.append((placed_at, int(amount), discount_code is not None, category))
    if current is not None:
        yield current, since, orders, stamp


@cache
def _history_query(
    text_moments: bool, *, all_orders: bool, stamps: bool, one_customer: bool
) -> sa.Select[Any]:
    """`raw_histories`' statement, built once per shape with bound values: a view's customer
    card reads one customer's history, and building the statement cost more than running it."""
    query = (
        sa.select(
            _CUSTOMERS.c.id,
            _CUSTOMERS.c.customer_since,
            sa.type_coerce(_ORDERS.c.placed_at, sa.String) if text_moments else _ORDERS.c.placed_at,
            _ORDERS.c.amount_cents,
            _ORDERS.c.discount_code,
            _ORDERS.c.category,
            _SEGMENTS.c.derived_stamp if stamps else sa.null(),
        )
        .outerjoin(
            _ORDERS,
            sa.and_(
                _ORDERS.c.customer_id == _CUSTOMERS.c.id,
                sa.true() if all_orders else _ORDERS.c.placed_at <= sa.bindparam("now"),
            ),
        )
        .where(_CUSTOMERS.c.installation_id == sa.bindparam("installation_id"))
        .order_by(_CUSTOMERS.c.id, _ORDERS.c.placed_at)
        .execution_options(yield_per=STREAM_ROWS)
    )
    if stamps:
        query = query.outerjoin(_SEGMENTS, _SEGMENTS.c.customer_id == _CUSTOMERS.c.id)
    if one_customer:
        query = query.where(_CUSTOMERS.c.id == sa.bindparam("customer_id"))
    return query
