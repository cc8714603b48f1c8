"""Read customers' order histories out of the database, a customer at a time, in bounded memory."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
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
    # Fetched a partition at a time: row by row, the result's own bookkeeping cost more than
    # this loop (a profile of a refresh).
    yield from _grouped(session.execute(query, bound).partitions(), text_moments=text_moments)


def _grouped(
    partitions: Iterable[Sequence[Any]], *, text_moments: bool, text_days: bool = False
) -> Iterator[RawHistory]:
    """The rows of `_history_query`, ordered by customer, grouped into each one's history
    (`text_days`: the account dates are still text, as the sqlite3 module returns them)."""
    current: int | None = None
    since: date | None = None
    stamp: str | None = None
    orders: list[tuple[datetime, int, bool, str | None]] = []
    for rows in partitions:
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
                if text_days and since is not None:
                    since = date.fromisoformat(str(since))  # as SQLAlchemy stores it: YYYY-MM-DD
            if placed_at is not None:
                if text_moments:
                    placed_at = datetime.fromisoformat(placed_at[:26])
                orders.append((placed_at, int(amount), discount_code is not None, category))
    if current is not None:
        yield current, since, orders, stamp


@dataclass(frozen=True)
class FileHistories:
    """Histories a worker process reads from the SQLite file itself, a range of customer ids at
    a time (`between`), instead of this process reading them and sending them over a pipe.

    Only where that reads what the session would (`file_histories`): the workers' connections
    see the last commit, not the session's own writes.
    """

    path: str
    statement: str  # `_history_query` as SQLite runs it, with the range's bounds
    parameters: tuple[str, ...]  # the names of its positional parameters, in order
    installation_id: int

    def between(self, low: int, high: int) -> list[RawHistory]:
        """The histories of the installation's customers with ids from low to high."""
        values = {"installation_id": self.installation_id, "low": low, "high": high}
        cursor = _reader(self.path).execute(
            self.statement, [values[name] for name in self.parameters]
        )
        try:
            pages = iter(lambda: cursor.fetchmany(STREAM_ROWS), [])
            return list(_grouped(pages, text_moments=True, text_days=True))
        finally:
            cursor.close()


def file_histories(session: Session, installation_id: int, *, stamps: bool) -> FileHistories | None:
    """How worker processes can read this installation's histories (every order, with
    `stamps` the segment rows' stamps) from the database file themselves; None unless the
    database is a SQLite file whose last commit is what this session sees: nothing pending in
    the session nor written and uncommitted on its connection. Call it before writing.
    """
    if session.get_bind().dialect.name != "sqlite" or session.new or session.dirty:
        return None
    if session.deleted:
        return None
    connection = session.connection()
    path = connection.engine.url.database
    driver = connection.connection.driver_connection
    if not path or path == ":memory:" or path.startswith("file:") or driver is None:
        return None
    if getattr(driver, "in_transaction", True):
        return None
    query = _history_query(True, all_orders=True, stamps=stamps, one_customer=False).where(
        _CUSTOMERS.c.id.between(sa.bindparam("low"), sa.bindparam("high"))
    )
    compiled = query.compile(dialect=connection.dialect)
    return FileHistories(
        path=os.path.abspath(path),
        statement=str(compiled),
        parameters=tuple(compiled.positiontup or ()),
        installation_id=installation_id,
    )


# A worker process's own connection to each database file it reads (never the parent's).
_READERS: dict[tuple[int, str], sqlite3.Connection] = {}


def _reader(path: str) -> sqlite3.Connection:
    key = (os.getpid(), path)
    reader = _READERS.get(key)
    if reader is None:
        reader = sqlite3.connect(path)
        reader.execute("PRAGMA busy_timeout=30000")
        reader.execute("PRAGMA query_only=1")
        _READERS[key] = reader
    return reader


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
