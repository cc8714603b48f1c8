"""The orders' history index, dropped and built again inside a big SQLite orders import.

`ix_orders_customer_history` keeps each customer's orders together in date order; an orders
file lists them by date, so each order lands on a leaf of its own, at random. Once the index
outgrows SQLite's page cache (64 MiB during an import: about 1M orders), nearly every order
reads its leaf back and dirties it (at 300k customers / 3M orders the index was 176 MB and
storing cost 15.9 s of CPU a million orders against 11.7 at a tenth of that; at 1M / 10M it
is about 590 MB). Building an index sorts its entries once and writes its pages in order
(storing 3M orders onto 300k customers: 59.4 s with the index, 26.1 s without it plus 6.2 s
building it after each of three transactions; 3M entries sort in about 4 s).

So an import that writes many orders relative to those stored (`worth_rebuilding`) drops the
index inside its write transaction, after the transaction's first write, and creates it
again before that transaction commits (`create`): other connections read the last committed
snapshot meanwhile, index included (WAL), and a killed or failed import rolls the drop back
with everything else. Each creation sorts every order in the table, so such an import's
transactions grow with the table (`csv_import._Progress`). The index created is the model's
own (`Order.__table__`'s `Index`), so the schema Alembic compares is unchanged.
"""

from __future__ import annotations

import io
import os
from typing import TextIO, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.models import Order

NAME = "ix_orders_customer_history"
# An import expected to write at least this share of the orders stored (every installation's:
# the index holds them all, and building it sorts them all) drops the index: a first load, or
# one that more than doubles the table. Not a re-import of what is stored (a nightly export
# of every order): its rows are mostly unchanged, so the index would be rebuilt for nothing,
# and a rebuilding transaction holds SQLite's one write lock for minutes at ten million
# orders, against 30 s for another writer's busy timeout...
REBUILD_SHARE = 2.0
# ...if it has at least this many rows: the index of fewer fits the page cache however they
# land, and each creation changes the schema, which every other connection then reads again.
REBUILD_MIN_ROWS = 100_000
# The first bytes of a file read to measure its lines' length.
SAMPLE_BYTES = 2**16

_ORDERS = cast(sa.Table, Order.__table__)


def _index() -> sa.Index:
    return next(index for index in _ORDERS.indexes if index.name == NAME)


def stored_orders(session: Session) -> int:
    """How many orders the table holds, about (its highest id: one B-tree descent, where a
    count would read the whole table; deleted orders leave gaps, so it errs high)."""
    return int(session.scalar(sa.select(sa.func.max(_ORDERS.c.id))) or 0)


def worth_rebuilding(session: Session, text: TextIO) -> bool:
    """Whether an orders import of this file should build the index instead of inserting
    into it (SQLite only; PostgreSQL's import is staged and set-based)."""
    if session.get_bind().dialect.name != "sqlite":
        return False
    file_rows = estimated_rows(text)
    return file_rows >= REBUILD_MIN_ROWS and file_rows >= REBUILD_SHARE * stored_orders(session)


def drop(session: Session) -> bool:
    """Drop the index inside the session's open write transaction; True if it was dropped.

    Python's sqlite3 opens a transaction at the first INSERT, UPDATE or DELETE only: a DROP
    before it would commit on its own, and readers would lose the index. So nothing is done
    (False) until the transaction has written.
    """
    connection = session.connection()
    if not getattr(connection.connection.driver_connection, "in_transaction", False):
        return False
    _index().drop(connection)
    return True


def create(session: Session) -> None:
    """Create the index again, as the model defines it, in the same transaction."""
    _index().create(session.connection())


def estimated_rows(text: TextIO) -> int:
    """About how many lines a file holds, from its size and its first lines' length; for a
    file in memory, exactly; 0 for a stream of neither kind (an import then never rebuilds)."""
    if isinstance(text, io.StringIO):
        return text.getvalue().count("\n")
    try:
        descriptor = text.fileno()
        size = os.fstat(descriptor).st_size
        sample = os.pread(descriptor, SAMPLE_BYTES, 0)
    except (AttributeError, OSError, ValueError):
        return 0
    lines = sample.count(b"\n")
    if not sample or not lines:
        return 1 if sample else 0
    return size * lines // len(sample)
